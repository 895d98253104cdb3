// The node's web page in a real browser: Debian's Chromium driven by playwright-core,
// against a real `aidmesh up` process. Run with `npm test` (after `cargo build -p aidmesh`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startNode, launch, waitFor, root, markFirstCards } from "./helpers.mjs";

const PASSPHRASE = ["--passphrase", "maple harbor ozone river ozone harbor"];

test("a phone at the hub sees the board, posts a need and gets live updates", async (t) => {
  const { base } = await startNode(t);
  const post = (path, body) => fetch(base + "/api/v1/" + path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }).then((r) => r.json());
  await post("needs", { title: "Insulin for Mrs Ada, 3rd floor", category: "medical",
    urgency: "life-threatening", qty: 2, unit: "pens", place: "14 River Rd" });
  await post("offers", { title: "Boat with driver", category: "rescue", place: "Elm St" });
  await post("alerts", { headline: "Water rising on River Road", area: "River Road" });
  const evil = "<img src=x onerror=alert(1)> & <b>bold</b>";
  await post("needs", { title: evil, category: "other" });

  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => { errors.push("dialog: " + d.message()); d.dismiss(); });
  const matchRequests = [];
  page.on("request", (r) => { if (r.url().includes("/api/v1/match")) matchRequests.push(r.url()); });
  await page.goto(base + "/");

  // The board, the alert and the community.
  await page.locator("#needs li", { hasText: "Insulin for Mrs Ada" }).waitFor();
  assert.match(await page.locator("#alerts").innerText(), /WATER RISING ON RIVER ROAD/i);
  assert.match(await page.locator("#community").innerText(), /Elm Street/);
  // Text from the mesh is shown as text, never as markup.
  const evilCard = page.locator("#needs li", { hasText: "onerror" });
  await evilCard.waitFor();
  assert.equal(await evilCard.locator("img, b").count(), 0, "markup in a title must not render");
  assert.ok((await evilCard.innerText()).includes(evil));

  // Post a need through the form.
  await page.click("nav button[data-tab=post]");
  await page.fill("#post-form input[name=title]", "Drinking water for 4 people");
  await page.selectOption("#post-form select[name=category]", "water");
  await page.selectOption("#post-form select[name=urgency]", "high");
  await page.fill("#post-form input[name=qty]", "20");
  await page.fill("#post-form input[name=unit]", "litres");
  await page.fill("#post-form input[name=place]", "7 Oak Ave");
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result", { hasText: "Posted" }).waitFor();
  const needs = await (await fetch(base + "/api/v1/needs")).json();
  assert.ok(needs.items.some((i) => i.title === "Drinking water for 4 people" && i.qty === 20));

  // A bad post is stopped on the page, in plain words next to the field (issue 29).
  await page.fill("#post-form input[name=title]", "   ");
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result.err", { hasText: "Not posted yet" }).waitFor();
  await page.locator("#err-title", { hasText: "Write what is needed or offered" }).waitFor();

  // Live: something posted elsewhere appears without a reload.
  await page.click("nav button[data-tab=needs]");
  await post("needs", { title: "Ride to dialysis at 9am", category: "transport" });
  await page.locator("#needs li", { hasText: "Ride to dialysis" }).waitFor({ timeout: 10000 });

  // Claim from the phone.
  const card = page.locator("#needs li", { hasText: "Insulin for Mrs Ada" });
  await card.getByRole("button", { name: "Claim" }).click();
  await waitFor("the claim to be stored", async () => {
    const all = await (await fetch(base + "/api/v1/needs?status=claimed")).json();
    return all.items.some((i) => i.title.startsWith("Insulin"));
  });
  await page.locator("#needs li", { hasText: "Insulin" }).locator(".s-claimed").waitFor();

  // Welfare: the hub computer itself sees people to check on and records a visit.
  await post("people", { name: "Ada Lovelace", place: "14 River Rd, 3rd floor", every: "12h", risks: ["oxygen"] });
  await page.click("nav button[data-tab=people]");
  const ada = page.locator("#people li", { hasText: "Ada Lovelace" });
  await ada.waitFor();
  await ada.getByRole("button", { name: "No answer" }).click();
  await page.locator("#people li .w-no-answer").waitFor();
  // Register someone from the page.
  await page.fill("#person-form input[name=name]", "Bo Lindqvist");
  await page.fill("#person-form input[name=place]", "2 Mill Lane");
  await page.fill("#person-form input[name=risks]", "wheelchair, lives alone");
  await page.fill("#person-form input[name=every]", "6h");
  await page.click("#person-form button[type=submit]");
  await page.locator("#people li", { hasText: "Bo Lindqvist" }).waitFor();
  const ppl = await (await fetch(base + "/api/v1/people")).json();
  const bo = ppl.people.find((p) => p.name === "Bo Lindqvist");
  assert.deepEqual(bo.risks, ["wheelchair", "lives alone"]);
  assert.equal(bo.every_secs, 6 * 3600);
  await page.screenshot({ path: join(root, "target", "web-people.png"), fullPage: true });
  await page.click("nav button[data-tab=needs]");

  // Matching costs the hub computer work: the page asks for it only while the Match tab
  // is shown (issue 9), and then a page at a time, updated live.
  await post("needs", { title: "Sandbags for 3 Elm St", category: "cleanup" });
  await page.locator("#needs li", { hasText: "Sandbags for 3 Elm St" }).waitFor({ timeout: 10000 });
  assert.deepEqual(matchRequests, [], "no /match request while the Match tab is hidden");
  await page.click("nav button[data-tab=match]");
  await page.locator("#match li", { hasText: "Ride to dialysis" }).waitFor();
  assert.ok(matchRequests.every((u) => new URL(u).pathname === "/api/v1/match"), matchRequests.join());
  await post("offers", { title: "Wheelchair taxi", category: "transport" });
  await page.locator("#match li", { hasText: "Ride to dialysis" })
    .locator("p", { hasText: "Wheelchair taxi" }).waitFor({ timeout: 10000 });
  await page.click("nav button[data-tab=needs]");

  await page.screenshot({ path: join(root, "target", "web-page.png"), fullPage: true });
  assert.deepEqual(errors, []);
});

test("the page says when a node of another community tried to connect (issue 15)", async (t) => {
  const status = async (n) => {
    const r = await fetch(`${n.base}/api/v1/status`);
    return r.ok && { base: n.base, st: await r.json() };
  };
  const a = await startNode(t, "Elm Street", [], [], undefined, { make: "start" });
  const { base, st } = await waitFor("the first node", () => status(a));
  const b = await startNode(t, "Elm Street", PASSPHRASE, ["--peer", `${st.listen[0]}/p2p/${st.peer_id}`], undefined,
    { make: "join" });
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  await page.goto(base + "/");
  await waitFor("the refused attempt in status", async () => (await status(a)).st.refused.length > 0, 30000);
  await page.reload();
  const warning = page.locator("#refused");
  await warning.waitFor();
  assert.match(await warning.innerText(), /A node at 127\.0\.0\.1 tried to join with a different passphrase/);

  // The node that dialled says so on its page too.
  const other = await waitFor("the dialling node", () => status(b));
  await waitFor("the refusal seen by the dialling node", async () => (await status(b)).st.refused_by.length > 0, 30000);
  await page.goto(other.base + "/");
  await page.locator("#refused", { hasText: "belongs to another community" }).waitFor();
});

test("welfare from the page: phone, note, any interval, checked by, every outcome; alerts end (issue 15)", async (t) => {
  const { base } = await startNode(t);
  const get = (path) => fetch(base + "/api/v1/" + path).then((r) => r.json());
  await fetch(base + "/api/v1/alerts", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ headline: "Water rising on River Road" }),
  });
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Dialogs: confirmations are accepted; the page asks nothing by prompt() (issue 29).
  page.on("dialog", (d) => (d.type() === "prompt" ? (errors.push("prompt: " + d.message()), d.dismiss()) : d.accept()));
  await page.goto(base + "/");

  // Register with phone, note and an interval not in any list.
  await page.click("nav button[data-tab=people]");
  await page.fill("#person-form input[name=name]", "Cy Okafor");
  await page.fill("#person-form input[name=place]", "2 Mill Lane");
  await page.fill("#person-form input[name=every]", "8h");
  await page.fill("#person-form input[name=phone]", "555-0199");
  await page.fill("#person-form textarea[name=note]", "knock loudly");
  await page.click("#person-form button[type=submit]");
  const cy = page.locator("#people li", { hasText: "Cy Okafor" });
  await cy.locator(".w-never-visited").waitFor();
  const person = async () => (await get("people")).people.find((p) => p.name === "Cy Okafor");
  const p0 = await person();
  assert.equal(p0.every_secs, 8 * 3600);
  assert.equal(p0.phone, "555-0199");
  assert.equal(p0.note, "knock loudly");
  assert.equal(p0.standing, "never-visited");

  // Check-ins record who checked, for every outcome the CLI has.
  await page.click("#who-box summary");
  await page.fill("#who", "Sam");
  await page.press("#who", "Tab");
  const outcomes = async (n) => waitFor(n + " check-ins", async () => {
    const p = await person();
    return p.checks.length === n && p;
  });
  await cy.getByRole("button", { name: "Not at home" }).click();
  await outcomes(1);
  // Moved: where to is asked on the card itself (issue 29: no prompt()).
  await cy.getByRole("button", { name: "Moved…" }).click();
  await cy.locator("input[name=where]").fill("school hall");
  await cy.getByRole("button", { name: "Record: moved" }).click();
  const p2 = await outcomes(2);
  assert.deepEqual(p2.checks.map((c) => [c.outcome, c.by]), [["not-home", "Sam"], ["moved", "Sam"]]);
  assert.equal(p2.place.label, "school hall", "a move changes where the person is");
  await cy.locator("p", { hasText: "Where: school hall" }).waitFor();
  await cy.getByRole("button", { name: "Safe" }).click();
  await cy.locator(".w-ok").waitFor();

  // Alerts: all clear from the page; it stays up, marked so, without the buttons.
  const banner = page.locator("#alerts .alert", { hasText: "Water rising" });
  await banner.getByRole("button", { name: "All clear" }).click();
  await page.locator("#alerts .alert.clear", { hasText: "ALL CLEAR: Water rising" }).waitFor();
  assert.equal((await get("alerts")).alerts[0].state, "all-clear");
  assert.deepEqual(errors, []);
});

test("who holds what: a named claim, confirmed done, undo, withdraw and history (issue 15)", async (t) => {
  const { base } = await startNode(t, "Elm Street", PASSPHRASE, [], undefined, { make: "join" });
  const post = (path, body) => fetch(base + "/api/v1/" + path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }).then((r) => r.json());
  const get = async (path) => (await fetch(base + "/api/v1/" + path)).json();
  await post("hubs", { name: "Elm St hall" });
  const need = await post("needs", { title: "Blankets for the school", category: "shelter" });

  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => { errors.push("dialog: " + d.message()); d.dismiss(); });
  await page.goto(base + "/");
  const card = page.locator("#needs li", { hasText: "Blankets for the school" });
  await card.waitFor();

  // The name is typed once and carried by the claim, with an optional note; the card
  // shows the holder.
  await page.click("#who-box summary");
  await page.fill("#who", "Ana");
  await page.locator("#who").dispatchEvent("change");
  await page.fill("#who-note", "van at 3pm");
  await card.getByRole("button", { name: "Claim" }).click();
  await card.locator(".holder", { hasText: "Held by Ana at Elm St hall since" }).waitFor();
  const claimed = await get("items/" + need.id);
  assert.equal(claimed.holder_name, "Ana");
  assert.equal(claimed.history[0].note, "van at 3pm");
  assert.equal(await page.inputValue("#who-note"), "", "the note goes with one change only");

  // In progress from the page.
  await card.getByRole("button", { name: "Start" }).click();
  await card.locator(".s-in-progress").waitFor();

  // Done asks first: nothing changes until confirmed.
  await card.getByRole("button", { name: "Done" }).click();
  await card.getByText("Really done?").waitFor();
  assert.equal((await get("items/" + need.id)).status, "in-progress");
  await card.getByRole("button", { name: "Not yet" }).click();
  await card.getByRole("button", { name: "Done" }).click();
  await card.getByRole("button", { name: "Yes, done" }).click();
  await waitFor("the item to be fulfilled", async () => (await get("items/" + need.id)).status === "fulfilled");
  await card.waitFor({ state: "detached" });

  // ... and can be undone from the page: it comes back open.
  await page.locator("#undo", { hasText: "Marked done: Blankets for the school" })
    .getByRole("button", { name: "Undo" }).click();
  await card.locator(".s-open").waitFor();
  assert.equal((await get("items/" + need.id)).status, "open");

  // The history is on the card, with who did what.
  await card.locator("details.history summary").click();
  const history = await card.locator("details.history").innerText();
  assert.match(history, /claimed by Ana \(Elm St hall\).*: van at 3pm/);
  assert.match(history, /done by Ana \(Elm St hall\)/);
  assert.match(history, /reopened by Ana \(Elm St hall\).*undone/);

  // Withdraw (posts made through this hub are its own), and undo that too.
  await card.getByRole("button", { name: "Withdraw" }).click();
  await card.waitFor({ state: "detached" });
  assert.equal((await get("items/" + need.id)).status, "withdrawn");
  await page.locator("#undo", { hasText: "Withdrew" }).getByRole("button", { name: "Undo" }).click();
  await card.locator(".s-open").waitFor();

  // A claim someone else holds says who and since when, on the page.
  await post("items/" + need.id + "/status", { status: "claimed", by: "Bo" });
  await card.locator(".holder", { hasText: "Held by Bo" }).waitFor();
  assert.equal(await card.getByRole("button", { name: "Claim" }).count(), 0);

  // A connected hub is shown by its announced name, not its key.
  const st = await get("status");
  const { base: base2 } = await startNode(t, "Elm Street", PASSPHRASE,
    ["--peer", `${st.listen[0]}/p2p/${st.peer_id}`], undefined, { make: "join" });
  await fetch(base2 + "/api/v1/hubs", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "School hall" }) });
  await page.locator("#meta", { hasText: "1 hub computer connected (School hall)" }).waitFor({ timeout: 30000 });
  assert.doesNotMatch(await page.locator("body").innerText(), /12D3KooW/);
  assert.deepEqual(errors, []);
});

test("a busy board: 2,000 items, the first screen in under a second on a phone; search, filters, more (issue 15)", async (t) => {
  // A search reads at most 600 posts an answer here (10,000 unless set): the 1,600
  // needs are searched a part at a time, as a million items are (issue 28).
  const { base } = await startNode(t, undefined, [], [], undefined, { env: { AIDMESH_SEARCH_READS: "600" } });
  const post = async (path, body) => {
    const r = await fetch(base + "/api/v1/" + path, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    assert.ok(r.ok, path + " answered " + r.status + ": " + (await r.text()));
  };
  await post("hubs", { name: "Elm St hall" });
  // 2,000 items through the API, a few at a time: 1,600 needs and 400 offers, of every
  // category and urgency; one need says "generator".
  const categories = ["water", "food", "medical", "shelter", "cleanup", "transport"];
  const urgencies = ["low", "normal", "high", "life-threatening"];
  const N = 2000;
  let next = 0;
  const filled = Date.now();
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let k = next++; k < N; k = next++) {
      const kind = k % 5 === 4 ? "offers" : "needs";
      const title = k === 1233 ? "Generator fuel for the clinic" : `${categories[k % 6]} item ${k}`;
      await post(kind, { title, category: categories[k % 6], urgency: urgencies[k % 4],
        place: `${k} Mill Lane`, details: "posted by the busy-board test" });
    }
  }));
  console.log(`filled ${N} items through the API in ${Date.now() - filled} ms`);

  const browser = await launch(t);
  // A phone: its screen size, pixel density and touch.
  const phone = { viewport: { width: 412, height: 915 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
  // From navigation to the first cards visible: in the page, from its navigation start
  // to the end of the frame that first shows a need card (asserted); and
  // from outside, from the `goto` call to Playwright seeing the card (printed).
  // `slower` emulates a CPU that many times slower than this machine's.
  const firstScreen = async (slower) => {
    const context = await browser.newContext(phone);
    await context.addInitScript(markFirstCards);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: slower });
    const start = Date.now();
    await page.goto(base + "/", { waitUntil: "commit" });
    await page.locator("#needs li[data-id]").first().waitFor({ state: "visible" });
    const outside = Date.now() - start;
    const inPage = Math.round(await waitFor("the first-cards time", () => page.evaluate(() => window.firstCardsMs)));
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 1 });
    return { ms: inPage, outside, page };
  };
  const { ms, outside, page } = await firstScreen(1);
  console.log(`first screen with ${N} items on a phone-sized page: ${ms} ms (seen from outside: ${outside} ms)`);
  // The goal (under a second) is a benchmark, measured on a quiet machine and written in
  // docs/benchmarks.md ("A busy board on the page"); here, beside other tests, only a
  // sanity bound three times the goal.
  assert.ok(ms < 3000, `the first screen took ${ms} ms (goal 1000 ms, bound here 3000 ms)`);
  // For the record only (a loaded CI machine makes it noisy): a CPU 4x slower.
  const slow = await firstScreen(4);
  console.log(`... with the CPU 4x slower: ${slow.ms} ms (seen from outside: ${slow.outside} ms)`);
  await slow.page.context().close();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const cards = page.locator("#needs li[data-id]");
  await page.locator("#needs-more", { hasText: "Showing 30 of 1,600" }).waitFor();
  assert.equal(await cards.count(), 30);

  // More, a page at a time.
  await page.locator("#needs-more").getByRole("button", { name: "Show more" }).click();
  await page.locator("#needs-more", { hasText: "Showing 60 of 1,600" }).waitFor();
  assert.equal(await cards.count(), 60);
  const ids = await cards.evaluateAll((ls) => ls.map((l) => l.dataset.id));
  assert.equal(new Set(ids).size, 60, "no card twice");

  // Search: the generator need is the 790th or so need in list order (normal urgency),
  // past the first 600 the first answer looks through; "Search further" goes on.
  const more = page.locator("#needs-more");
  await page.fill("#f-q", "GENERATOR clinic");
  await page.locator("#needs-more", { hasText: "Showing 0 found in the first 600 of 1,600" }).waitFor();
  assert.equal(await cards.count(), 0);
  await more.getByRole("button", { name: "Search further" }).click();
  await page.locator("#needs-more", { hasText: "Showing 1 found in the first 1,200 of 1,600" }).waitFor();
  assert.equal(await cards.count(), 1);
  assert.match(await cards.first().innerText(), /Generator fuel for the clinic/);
  await more.getByRole("button", { name: "Search further" }).click();
  await page.locator("#needs-more", { hasText: "Showing 1 found in all 1,600" }).waitFor();
  assert.equal(await more.getByRole("button").count(), 0, "nothing left to search");
  assert.equal(await cards.count(), 1);
  // A live change does not undo the search further: an offer that matches reaches the
  // (short, searched whole) offers list; the needs found further stay.
  await post("offers", { title: "Van for the generator clinic", category: "transport" });
  await page.locator("#offers li[data-id]", { hasText: "Van for the generator clinic" }).waitFor({ state: "attached" });
  assert.equal(await cards.count(), 1);
  assert.match(await more.innerText(), /Showing 1 found in all 1,600/);
  await page.fill("#f-q", "helicopter");
  await page.locator("#needs li.empty", { hasText: "Nothing matches these filters." }).waitFor();
  await page.fill("#f-q", "");

  // Filters: urgency, category, status and hub, together.
  await page.selectOption("#f-urgency", "life-threatening");
  await page.locator("#needs-more", { hasText: "Showing 30 of 400" }).waitFor();
  assert.equal(await page.locator("#needs li[data-id] .u-life-threatening").count(), 30);
  await page.selectOption("#f-category", "shelter");
  // Life-threatening shelter: k % 4 == 3 and k % 6 == 3, so k ≡ 3 (mod 12); needs unless k % 5 == 4.
  await page.locator("#needs-more", { hasText: "of 134" }).waitFor();
  await page.selectOption("#f-hub", "Elm St hall");
  await page.locator("#needs-more", { hasText: "of 134" }).waitFor();
  await page.selectOption("#f-status", "claimed");
  await page.locator("#needs li.empty", { hasText: "Nothing matches these filters." }).waitFor();
  await page.selectOption("#f-status", "");

  // Offers have the same filters.
  await page.click("nav button[data-tab=offers]");
  assert.ok(await page.locator("#filters").isVisible());
  await page.locator("#offers-more", { hasText: "of 33" }).waitFor();
  await page.click("nav button[data-tab=hubs]");
  assert.ok(!(await page.locator("#filters").isVisible()), "no board filters on the Hubs tab");
  await page.screenshot({ path: join(root, "target", "web-busy.png"), fullPage: false });
  assert.deepEqual(errors, []);
});
