// The first hour, as a coordinator lives it (issue 29): the page's words, posting checks,
// the welfare tab on a phone and the page with a keyboard and a screen reader, in
// Debian's Chromium against real nodes. Run by tests/tests/web_first_hour.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { networkInterfaces } from "node:os";
import { startNode, launch, post, waitFor } from "./helpers.mjs";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const PASSPHRASE = ["--passphrase", "river lantern otter maple candle harbor"];
const PIN = "482913";

async function peerAddr(base) {
  const st = await (await fetch(base + "/api/v1/status")).json();
  return st.listen[0] + "/p2p/" + st.peer_id;
}

function lanAddress() {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list || []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  throw new Error("this test needs a non-loopback IPv4 address on this machine");
}

async function axe(page, what) {
  const result = await page.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
  }));
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ` +
    v.nodes.map((n) => n.target.join(" ")).join(", ")), [], what);
}

// Where the focus is: the card (data-id) it is in and the button's data-act.
const focused = (page) => page.evaluate(() => {
  const a = document.activeElement;
  const li = a && a.closest("li[data-id]");
  return { id: li ? li.dataset.id : null, act: a ? a.dataset.act || null : null,
    body: a === document.body || a === null };
});

test("the board's words: no null, plurals, hubs in words, short ids, a live region, tabs", async (t) => {
  const a = await startNode(t, "Elm Street", PASSPHRASE);
  a.cli("hub", "announce", "Elm St");
  const needs = [];
  for (const title of ["Insulin for Mrs Ada", "Sandbags for 3 Elm St", "Blankets for the school"]) {
    needs.push(await post(a.base, "needs", { title, category: "shelter" }));
  }
  await post(a.base, "alerts", { headline: "Water rising on River Road" });
  const browser = await launch(t);
  const page = await browser.newPage({ locale: "en-GB", viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => { errors.push("dialog: " + d.message()); d.dismiss(); });
  await page.goto(a.base + "/");
  await waitFor("three cards", async () => (await page.locator("#needs li[data-id]").count()) === 3);

  // "Showing 3 of 3", not "Showing 3 of 3null"; no offers: no "null" line either.
  assert.equal(await page.locator("#needs-more").textContent(), "Showing 3 of 3");
  assert.equal(await page.locator("#offers-more").textContent(), "", "no standalone null");
  assert.doesNotMatch(await page.locator("body").textContent(), /null/);

  // The short id on every card, also once the hub has a name.
  for (const n of needs) {
    const card = page.locator(`li[data-id="${n.id}"]`);
    assert.match(await card.textContent(), new RegExp("ID " + n.short_id), "short id on the card");
    assert.match(await card.textContent(), /Elm St/);
  }

  // Which tab is selected is exposed; the need/offer choice has a legend.
  assert.equal(await page.getAttribute("nav button[data-tab=needs]", "aria-current"), "page");
  await page.click("nav button[data-tab=offers]");
  assert.equal(await page.getAttribute("nav button[data-tab=offers]", "aria-current"), "page");
  assert.equal(await page.getAttribute("nav button[data-tab=needs]", "aria-current"), null);
  await page.click("nav button[data-tab=needs]");
  assert.equal(await page.locator("#post-form fieldset.kind legend").textContent(), "Need or offer");

  // Buttons name what they act on.
  await page.getByRole("button", { name: "Claim: Insulin for Mrs Ada", exact: true }).waitFor();

  // One name field, remembered on this phone, not on the Post tab.
  assert.equal(await page.locator("#checked-by").count(), 0, "one name field");
  await page.click("#who-box summary");
  await page.fill("#who", "Ana");
  await page.press("#who", "Tab");
  assert.equal(await page.evaluate(() => localStorage.getItem("volunteer-name")), "Ana");
  await page.click("nav button[data-tab=post]");
  assert.equal(await page.isVisible("#who-box"), false, "no name field above the post form");
  await page.click("nav button[data-tab=needs]");
  assert.match(await page.locator("#who-box summary").textContent(), /Ana/);

  // Alert banners are not put in again by a refresh that changes nothing about them.
  await page.locator("#alerts .alert").waitFor();
  await page.evaluate(() => { document.querySelector("#alerts .alert").dataset.mark = "kept"; });
  await post(a.base, "offers", { title: "Dry socks", category: "shelter" });
  await page.evaluate(() => refresh());
  await page.locator("#offers li", { hasText: "Dry socks" }).waitFor({ state: "attached" });
  assert.equal(await page.getAttribute("#alerts .alert", "data-mark"), "kept", "banner not re-inserted");

  // A new need on the stream is announced once, politely.
  assert.equal(await page.getAttribute("#announce", "aria-live"), "polite");
  await post(a.base, "needs", { title: "Ride to dialysis at 9am", category: "transport" });
  await waitFor("the new need announced", async () =>
    (await page.locator("#announce").textContent()) === "New need: Ride to dialysis at 9am");

  // Keyboard: focus stays on the card after Claim, and after a redraw of the board.
  const ada = needs[0];
  await page.getByRole("button", { name: "Claim: Insulin for Mrs Ada" }).focus();
  await page.keyboard.press("Enter");
  await page.locator(`li[data-id="${ada.id}"] .badge.s-claimed`).waitFor();
  let f = await focused(page);
  assert.equal(f.id, ada.id, "focus kept on the claimed card: " + JSON.stringify(f));
  await page.locator(`li[data-id="${ada.id}"] [data-act=done]`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`li[data-id="${ada.id}"] .confirm`).waitFor();
  f = await focused(page);
  assert.equal(f.id, ada.id, "focus on the card while asking Done?: " + JSON.stringify(f));
  await page.locator(`li[data-id="${ada.id}"] [data-act=yes]`).focus();
  await page.keyboard.press("Enter");
  await page.locator(`li[data-id="${ada.id}"]`).waitFor({ state: "detached" });
  f = await focused(page);
  assert.ok(f.id && !f.body, "focus moves to the next card, not the page: " + JSON.stringify(f));
  const sandbags = needs[1];
  await page.locator(`li[data-id="${sandbags.id}"] [data-act=start]`).focus();
  await post(a.base, "needs", { title: "Torch batteries", category: "power" });
  await page.evaluate(() => refresh());
  await page.locator("#needs li", { hasText: "Torch batteries" }).waitFor();
  await page.evaluate(() => refresh());
  f = await focused(page);
  assert.deepEqual([f.id, f.act], [sandbags.id, "start"], "focus kept through a redraw");

  // A second hub: "1 hub computer" (singular), the card says "at 2 of 2 hubs" in words.
  const b = await startNode(t, "Elm Street", PASSPHRASE, ["--peer", await peerAddr(a.base)]);
  await waitFor("one hub computer connected", async () =>
    /^1 hub computer connected/.test(await page.locator("#meta").textContent()), 30000);
  await waitFor("the card to say at 2 of 2 hubs", async () =>
    /at 2 of 2 hubs/.test(await page.locator(`li[data-id="${sandbags.id}"]`).textContent()), 30000);
  await page.selectOption("#lang", "es");
  await waitFor("Spanish", async () =>
    /^1 ordenador de centro conectado/.test(await page.locator("#meta").textContent()));
  await waitFor("Spanish counts", async () =>
    /en 2 de 2 centros/.test(await page.locator(`li[data-id="${sandbags.id}"]`).textContent()));
  assert.match(await page.locator("#needs-more").textContent(), /^Mostrando \d+ de \d+$/);
  assert.doesNotMatch(await page.locator("body").textContent(), /null/);
  await b.down();
  assert.deepEqual(errors, []);
});

test("posting: checked on the page, in the page's language, next to each field", async (t) => {
  const node = await startNode(t);
  const browser = await launch(t);
  const ctx = await browser.newContext({ locale: "es-ES", bypassCSP: true, viewport: { width: 412, height: 915 } });
  const page = await ctx.newPage();
  const posted = [];
  page.on("request", (r) => { if (r.method() === "POST") posted.push(r.url()); });
  await page.goto(node.base + "/");
  await page.click("nav button[data-tab=post]");
  await page.locator("#category option[value=water]").waitFor({ state: "attached" });
  assert.equal(await page.inputValue("#category"), "", "no category chosen for the poster");

  // All spaces and no category: two messages in Spanish, tied to their fields.
  await page.fill("#post-form input[name=title]", "    ");
  await page.click("#post-form button[type=submit]");
  const title = page.locator("#post-form input[name=title]");
  assert.equal(await title.getAttribute("aria-invalid"), "true");
  const described = await title.getAttribute("aria-describedby");
  assert.match(await page.locator("#" + described).textContent(), /^Escribe qué se necesita/);
  assert.equal(await page.getAttribute("#category", "aria-invalid"), "true");
  const catMsg = await page.getAttribute("#category", "aria-describedby");
  assert.match(await page.locator("#" + catMsg).textContent(), /^Elige una categoría/);
  assert.equal(await page.evaluate(() => document.activeElement.name), "title", "focus on the first field to fix");

  // A 20 KB paste is not cut silently: it is kept and flagged with its length.
  const long = "agua ".repeat(4000);
  await title.fill(long);
  assert.equal((await title.inputValue()).length, 20000, "nothing cut");
  assert.match(await page.locator("#" + described).textContent(), /Demasiado largo: 20\.000 caracteres, como máximo 120/);
  await page.click("#post-form button[type=submit]");
  assert.match(await page.locator("#post-result").textContent(), /Todavía no se ha publicado/);
  assert.deepEqual(posted, [], "nothing was sent");

  // Near the limit a counter shows; fixed, it posts.
  await title.fill("x".repeat(100));
  assert.equal(await page.locator("#" + described).textContent(), "100 de 120 caracteres");
  await title.fill("Agua potable para 4");
  await page.click("#quick-cat button[data-cat=water]");
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result", { hasText: "Publicada" }).waitFor();
  assert.equal(await title.getAttribute("aria-invalid"), null);

  // A refusal only the node makes (a text-direction mark in the title): its code and
  // field place it at the title, in Spanish, not as the node's English sentence.
  await title.fill("Agua\u202Epotable");
  await page.click("#quick-cat button[data-cat=water]");
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result", { hasText: "Todavía no se ha publicado" }).waitFor();
  assert.equal(await title.getAttribute("aria-invalid"), "true");
  assert.equal(await page.evaluate(() => document.activeElement.name), "title", "focus on the refused field");
  assert.match(await page.locator("#" + described).textContent(), /^Contiene un carácter no permitido/);
  assert.doesNotMatch(await page.locator("#tab-post").textContent(), /contains the|U\+202E/);
  await page.addScriptTag({ path: axePath });
  await axe(page, "post form after errors");
});

test("a bundle through the page says what came in; a hub not seen for days is said so, not counted, and retired", async (t) => {
  const laptop = await startNode(t, "Elm Street", PASSPHRASE);
  laptop.cli("hub", "announce", "Old laptop");
  await post(laptop.base, "needs", { title: "Tarpaulins", category: "shelter" });
  await post(laptop.base, "needs", { title: "Torches", category: "shelter" });
  await post(laptop.base, "offers", { title: "Blankets", category: "shelter" });
  const file = laptop.dir + "/laptop.bundle";
  laptop.cli("bundle", "export", file);
  const node = (await (await fetch(laptop.base + "/api/v1/status")).json()).author.slice(0, 8);
  await laptop.down();
  // This hub's clock runs 4 days ahead: the laptop's records are 4 days old here.
  const hub = await startNode(t, "Elm Street", PASSPHRASE, ["--clock-offset", "4d"]);
  const browser = await launch(t);
  const page = await browser.newPage({ locale: "en-GB", viewport: { width: 412, height: 915 } });
  await page.goto(hub.base + "/");
  await page.click("nav button[data-tab=hubs]");
  await page.click("#usb summary");
  // Not a bundle: said from the page's catalogue, not in the node's English.
  await page.setInputFiles("#bundle-form input[type=file]",
    { name: "notes.bundle", mimeType: "application/octet-stream", buffer: Buffer.from("water, bread") });
  await page.click("#bundle-form button[type=submit]");
  await page.locator("#bundle-result.err", { hasText: "This file is not an aidmesh bundle" }).waitFor();
  // Nor is a CAP file that is not XML said in the node's English (issue 29).
  await page.click("#cap summary");
  await page.setInputFiles("#cap-form input[type=file]",
    { name: "alert.xml", mimeType: "application/xml", buffer: Buffer.from("water, bread") });
  await page.click("#cap-form button[type=submit]");
  await page.locator("#cap-result.err", { hasText: "This is not an XML file: an official alert (CAP)" }).waitFor();
  await page.setInputFiles("#bundle-form input[type=file]", file);
  await page.click("#bundle-form button[type=submit]");
  const result = page.locator("#bundle-result");
  await waitFor("the import result", async () => !/Importing/.test(await result.textContent()) && (await result.textContent()) !== "");
  assert.equal(await result.textContent(),
    "4 new, 0 already known, 0 refused. Came in: 2 needs, 1 offer, 1 hub. From: Old laptop (4).");

  // The laptop: not seen for 4 days, not counted on the cards ("at 1 of 1 hub").
  const card = page.locator(`#roster li[data-node="${node}"]`);
  await card.filter({ hasText: "not seen for 4 days" }).waitFor();
  await page.click("nav button[data-tab=needs]");
  await waitFor("the laptop's needs", async () => (await page.locator("#needs li[data-id]").count()) === 2);
  for (const badge of await page.locator("#needs .badge.known").allTextContents()) {
    assert.equal(badge, "at 1 of 1 hub");
  }
  // Retired from the page (this is the hub computer): off the list.
  await page.click("nav button[data-tab=hubs]");
  await card.locator("button[data-act=retire]").click();
  await page.locator("#roster-result", { hasText: "Old laptop is off this hub's list" }).waitFor();
  await waitFor("the laptop off the hub list", async () => (await card.count()) === 0);
  const roster = await (await fetch(hub.base + "/api/v1/hubs")).json();
  assert.ok(!roster.some((h) => h.node === node), "retired, yet on GET /hubs");
});

test("the clock warning in the page's language", async (t) => {
  // A computer that booted without a real-time clock (1970).
  const node = await startNode(t, "Elm Street", [], ["--clock-at", "0"]);
  const browser = await launch(t);
  const page = await browser.newPage({ locale: "es-ES" });
  await page.goto(node.base + "/");
  const clock = page.locator("#clock");
  await clock.filter({ hasText: "reloj" }).waitFor();
  assert.match(await clock.textContent(), /^El reloj de este ordenador marca una fecha anterior/);
});

test("the welfare tab on a phone: plain words in Spanish, a wrong PIN said, help inline, the round sheet", async (t) => {
  const node = await startNode(t, "Elm Street", [], ["--volunteer-pin", PIN], "0.0.0.0:0");
  const ada = await (await fetch(node.base + "/api/v1/people", { method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "Ada Okafor", place: "12 Mill Lane", every: "12h", consent: "self" }) })).json();
  assert.ok(ada.short_id, JSON.stringify(ada));
  const phoneBase = node.base.replace("127.0.0.1", lanAddress());
  const browser = await launch(t);
  const ctx = await browser.newContext({ locale: "es-ES", viewport: { width: 412, height: 915 } });
  const page = await ctx.newPage();
  const dialogs = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.goto(phoneBase + "/");
  await page.click("nav button[data-tab=people]");
  const why = page.locator("#pin-why");
  await why.locator("text=/PIN/").waitFor();
  assert.doesNotMatch(await why.textContent(), /X-Volunteer-Pin|header/i, "no developer words");
  assert.match(await why.textContent(), /^Esta lista es para el voluntariado/);

  // A wrong PIN is said to be wrong.
  await page.fill("#pin-form input[name=pin]", "000000");
  await page.click("#pin-form button[type=submit]");
  await page.locator("#pin-why", { hasText: "Ese PIN no es correcto" }).waitFor();
  assert.equal(await page.getAttribute("#pin-form input[name=pin]", "aria-invalid"), "true");

  await page.fill("#pin-form input[name=pin]", PIN);
  await page.click("#pin-form button[type=submit]");
  const card = page.locator(`#people li[data-id="${ada.id}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), new RegExp("ID " + ada.short_id), "short id on people cards");

  // Adding someone with nothing typed: asked for in Spanish, next to each field.
  await page.fill("#person-form input[name=every]", "");
  await page.click("#person-form button[type=submit]");
  const nameInput = page.locator("#person-form input[name=name]");
  assert.equal(await nameInput.getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#" + await nameInput.getAttribute("aria-describedby")).textContent(),
    /^Escribe su nombre/);
  assert.match(await page.locator("#err-person-every").textContent(), /^Di cada cuánto visitarla/);
  assert.match(await page.locator("#person-result").textContent(), /^Todavía no se ha añadido/);

  // Needs help: a form on the card, no prompt(); the name comes from the one name field.
  await page.click("#who-box summary");
  await page.fill("#who", "Sam");
  await page.press("#who", "Tab");
  await card.getByRole("button", { name: "Necesita ayuda…: Ada Okafor" }).click();
  const help = card.locator("input[name=help]");
  await help.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), "help", "focus in the help field");
  await card.locator("[data-act=help-send]").click();
  await card.locator(".field-msg", { hasText: "Di qué ayuda necesita" }).waitFor();
  await help.fill("agua y medicinas");
  await card.locator("[data-act=help-send]").click();
  await card.locator(".w-needs-help").waitFor();
  const people = await (await fetch(node.base + "/api/v1/people")).json();
  const checks = people.people.find((p) => p.id === ada.id).checks;
  assert.deepEqual(checks.map((c) => [c.outcome, c.detail, c.by]), [["needs-help", "agua y medicinas", "Sam"]]);
  // Moved: the same kind of form.
  await card.getByRole("button", { name: "Se ha trasladado…: Ada Okafor" }).click();
  await card.locator("input[name=where]").fill("polideportivo");
  await card.locator("[data-act=help-send]").click();
  await card.locator("p", { hasText: "Dónde: polideportivo" }).waitFor();
  assert.deepEqual(dialogs, [], "no native dialogs");

  // The round sheet opens with the PIN, not as a raw 401.
  const [sheet] = await Promise.all([ctx.waitForEvent("page"), page.click("#print-round")]);
  await waitFor("the round sheet", async () => /Ronda de visitas/.test(await sheet.locator("body").textContent()));
  assert.doesNotMatch(await sheet.locator("body").textContent(), /pin_required/);
  // Styled (its inline <style> is refused by the page's CSP; the rules are adopted).
  assert.ok(await sheet.evaluate(() => document.adoptedStyleSheets.some((x) => x.cssRules.length > 3)),
    "the round sheet keeps its print styles");
});

test("keyboard and dark mode: Shift+Tab never hides the focus under the tabs; dark and clean for axe", async (t) => {
  const node = await startNode(t);
  for (let i = 0; i < 12; i++) await post(node.base, "needs", { title: `Sandbags for house ${i}`, category: "cleanup" });
  const browser = await launch(t);
  const ctx = await browser.newContext({ locale: "en-GB", bypassCSP: true, colorScheme: "dark",
    viewport: { width: 412, height: 700 } });
  const page = await ctx.newPage();
  await page.goto(node.base + "/");
  await waitFor("twelve cards", async () => (await page.locator("#needs li[data-id]").count()) === 12);

  // From the footer back up with Shift+Tab: each focused control in main is below the tabs.
  await page.locator("#print-board").focus();
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press("Shift+Tab");
    const r = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a.closest("main")) return null;
      const nav = document.querySelector("nav").getBoundingClientRect();
      return { top: a.getBoundingClientRect().top, navBottom: nav.bottom, text: a.textContent };
    });
    if (r) assert.ok(r.top >= r.navBottom - 1, `focused control under the sticky tabs: ${JSON.stringify(r)}`);
  }

  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(18, 18, 18)", "dark background in dark mode");
  await page.addScriptTag({ path: axePath });
  for (const tab of ["needs", "post", "people", "hubs"]) {
    await page.click(`nav button[data-tab=${tab}]`);
    if (tab === "post") await page.click("#post-form button[type=submit]");
    await axe(page, "dark mode, tab " + tab);
  }
  // Input borders: at least 3:1 against the background (the light page).
  await page.emulateMedia({ colorScheme: "light" });
  const border = await page.evaluate(() => getComputedStyle(document.querySelector("#f-q")).borderTopColor);
  assert.equal(border, "rgb(118, 118, 118)", "input borders 4.5:1 on white");
});
