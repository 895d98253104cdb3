// The street on a map (issue 27): a real node with the test town's tiles installed
// (`aidmesh map add`, the town built by tippecanoe: tests/src/map.rs, its path in
// AIDMESH_TEST_TOWN), the page's map view in Chromium with software WebGL (SwiftShader).
// Pins where their positions are, a tap opens the pin's card and its action works,
// "use my location" (a faked position) and "pick on the map" place a need, the street
// names drawn from the tiles, no request beyond the node, the CSP kept, axe clean; and
// with no map, the map view says how to add one and the lists work. Run by
// tests/tests/web_map.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startNode, launch, post, waitFor, lanAddress, WEBGL } from "./helpers.mjs";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const town = process.env.AIDMESH_TEST_TOWN;
const PIN = "river-4827";

async function api(base, path, body) {
  const r = await fetch(base + "/api/v1" + path, body ? {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  } : {});
  const v = await r.json();
  if (!r.ok) throw new Error(path + ": " + JSON.stringify(v));
  return v;
}

// The map drawn and idle, with the pins' layer: MapLibre's own state, no sleeping.
async function mapReady(page) {
  await waitFor("the map drawn with its pins", () => page.evaluate(() => {
    const m = window.aidmeshMap;
    return m && m.getLayer("pins") && m.loaded() && m.areTilesLoaded() && !m.isMoving();
  }), 30000);
}

// The pixel in the window of a position, as the map projects it (the map scrolled into view).
async function pixelOf(page, lon, lat) {
  return page.evaluate(([lon, lat]) => {
    const m = window.aidmeshMap;
    // A card opened below the map may have scrolled it partly out of the window.
    m.getContainer().scrollIntoView({ block: "center" });
    const p = m.project([lon, lat]);
    const r = m.getCanvas().getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y, inside: p.x >= 0 && p.y >= 0 && p.x <= r.width && p.y <= r.height };
  }, [lon, lat]);
}

test("the map view: pins where they are, their cards, placing, street names, nothing beyond the node", async (t) => {
  assert.ok(town, "AIDMESH_TEST_TOWN: the test town's PMTiles file (run through tests/tests/web_map.rs)");
  const node = await startNode(t, "Vadoclaro", [], ["--volunteer-pin", PIN], "0.0.0.0:0");
  node.cli("map", "add", town);
  // Where Calle Mayor crosses Avenida del Puente, and on Calle del Molino (tests/data/map).
  const urgent = await post(node.base, "needs", { title: "Insulina para Rosa", category: "medical",
    urgency: "life-threatening", place: "Calle Mayor 3", lat: 40.4075, lon: -3.6930 });
  const offer = await post(node.base, "offers", { title: "Generador", category: "power", lat: 40.4040, lon: -3.6960 });
  const nowhere = await post(node.base, "needs", { title: "Mantas", category: "shelter" });
  await api(node.base, "/hubs", { name: "Salón de Vadoclaro", services: ["water"], lat: 40.4110, lon: -3.6880 });
  // A door of the welfare round (this page is on the hub computer: it may see people).
  const ada = await api(node.base, "/people", { name: "Ada Okafor", place: "Calle Nueva 2", every: "12h",
    consent: "self", lat: 40.4100, lon: -3.6960 });

  const browser = await launch(t, WEBGL);
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-GB",
    geolocation: { latitude: 40.4100, longitude: -3.6950, accuracy: 12 }, permissions: ["geolocation"] });
  const page = await ctx.newPage();
  const hosts = new Set();
  const errors = [];
  page.on("request", (r) => hosts.add(new URL(r.url()).host));
  page.on("console", (m) => { if (m.type() === "error" && /Content.Security.Policy|Refused/i.test(m.text())) errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));

  await page.goto(node.base + "/map");
  await mapReady(page);
  assert.equal(await page.getAttribute("nav button[data-tab=map]", "aria-current"), "page", "/map opens the map tab");
  assert.match(await page.getAttribute("#map canvas", "aria-label"), /Map of the town/);
  // The map file's attribution (tests/src/map.rs gives the test town one), as text.
  assert.match(await page.textContent("#map-attribution"), /^Map data: Invented for the aidmesh tests/);

  // The pins: at the pixel of each item's position, MapLibre has drawn that item.
  const drawnAt = async (item) => {
    const p = await pixelOf(page, item.place.lon, item.place.lat);
    assert.ok(p.inside, `${item.title}'s position is in view`);
    return page.evaluate(([x, y]) => {
      const m = window.aidmeshMap;
      const r = m.getCanvas().getBoundingClientRect();
      return m.queryRenderedFeatures([[x - r.left - 3, y - r.top - 3], [x - r.left + 3, y - r.top + 3]],
        { layers: ["pins"] }).map((f) => f.properties.id);
    }, [p.x, p.y]);
  };
  await waitFor("both positioned items drawn", async () => (await page.evaluate(() =>
    window.aidmeshMap.queryRenderedFeatures({ layers: ["pins"] }).length)) === 2);
  assert.deepEqual(await drawnAt(urgent), [urgent.id]);
  assert.deepEqual(await drawnAt(offer), [offer.id]);
  const drawn = await page.evaluate(() => window.aidmeshMap.queryRenderedFeatures({ layers: ["pins"] }).map((f) => f.properties.id));
  assert.ok(!drawn.includes(nowhere.id), "an item with no position is not on the map");
  assert.match(await page.textContent("#map-summary"), /1 needs and 1 offers/);
  // The hub, green: this node is the hub that announced it.
  const hubs = await page.evaluate(() => window.aidmeshMap.queryRenderedFeatures({ layers: ["hubs"] }).map((f) => f.properties));
  assert.deepEqual(hubs.map((h) => [h.name, h.state]), [["Salón de Vadoclaro", "me"]]);
  // The round's door, for the hub computer (a phone without the PIN does not ask).
  await waitFor("the door drawn", () => page.evaluate((id) => window.aidmeshMap
    .queryRenderedFeatures({ layers: ["doors"] }).some((f) => f.properties.id === id), ada.id));
  // Its card, with the round's buttons: "Safe" recorded, and the door turns green.
  const door = await pixelOf(page, -3.6960, 40.4100);
  await page.mouse.click(door.x, door.y);
  await page.locator(`#map-card li[data-id="${ada.id}"] [data-act=safe]`).click();
  await waitFor("the check-in stored", async () => (await api(node.base, "/people/" + ada.short_id)).standing === "ok");
  await waitFor("the door's colour follows", () => page.evaluate((id) => window.aidmeshMap
    .querySourceFeatures("doors").some((f) => f.properties.id === id && f.properties.standing === "ok"), ada.id));

  // The street names, from the tiles, drawn with the node's glyphs (zoomed in to the
  // crossing: at the town's overview they do not fit along their streets).
  await page.evaluate(() => window.aidmeshMap.jumpTo({ center: [-3.6930, 40.4075], zoom: 16 }));
  await mapReady(page);
  await waitFor("Calle Mayor's name drawn", () => page.evaluate(() => window.aidmeshMap
    .queryRenderedFeatures({ layers: ["road-names"] }).some((f) => f.properties.name === "Calle Mayor")));

  // A tap on the pin: its card, with its actions; "Claim" claims it.
  const at = await pixelOf(page, urgent.place.lon, urgent.place.lat);
  await page.mouse.click(at.x, at.y);
  const card = page.locator(`#map-card li[data-id="${urgent.id}"]`);
  await card.waitFor();
  assert.match(await card.textContent(), /Insulina para Rosa/);
  await card.locator("[data-act=claim]").click();
  await waitFor("the claim stored", async () => (await api(node.base, "/items/" + urgent.short_id)).status === "claimed");
  await waitFor("the map's card redrawn as claimed", async () => /claimed/.test(await card.textContent()));

  // "Use my location": the faked position fills the form, and the posted need has it.
  await page.click("nav button[data-tab=post]");
  await page.fill("#post-form input[name=title]", "Agua para el 5º");
  await page.selectOption("#category", "water");
  await page.click("#use-location");
  await waitFor("the position filled", async () => (await page.inputValue("#post-form input[name=lat]")) !== "");
  await page.click("#post-form button[type=submit]");
  const located = await waitFor("the located need", async () =>
    (await api(node.base, "/needs?limit=50")).items.find((i) => i.title === "Agua para el 5º"));
  assert.equal(located.place.lat, 40.41);
  assert.equal(located.place.lon, -3.695);

  // "Pick on the map": a tap on the map sets the position where it was tapped.
  await page.fill("#post-form input[name=title]", "Pan");
  await page.selectOption("#category", "food");
  await page.click("#pick-on-map");
  await page.locator("#map-placing").waitFor();
  await mapReady(page);
  const spot = await pixelOf(page, -3.6945, 40.4085);
  assert.ok(spot.inside, "the spot to pick is in view");
  await page.mouse.click(spot.x, spot.y);
  await page.locator("#tab-post").waitFor();
  const lat = Number(await page.inputValue("#post-form input[name=lat]"));
  const lon = Number(await page.inputValue("#post-form input[name=lon]"));
  assert.ok(Math.abs(lat - 40.4085) < 0.0001 && Math.abs(lon + 3.6945) < 0.0001, `picked ${lat}, ${lon}`);
  await page.click("#post-form button[type=submit]");
  await waitFor("the picked need", async () => (await api(node.base, "/needs?limit=50")).items.find((i) => i.title === "Pan" && i.place.lat));
  // The new needs are pins too (from the stream, no reload).
  await page.click("nav button[data-tab=map]");
  await waitFor("the two new needs on the map", async () => /3 needs and 1 offers/.test(await page.textContent("#map-summary")));

  assert.deepEqual([...hosts], [new URL(node.base).host], "every request went to the node");
  assert.deepEqual(errors, [], "no CSP refusal, no script error");
  await ctx.close();

  // A phone on the hub's Wi-Fi: without the PIN no door, and it does not ask for people;
  // with it, the door. Its page is not a secure context (plain http to a LAN address),
  // so the browser gives it no position: "use my location" says so.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const pp = await phone.newPage();
  const phoneAsked = [];
  pp.on("request", (r) => phoneAsked.push(new URL(r.url()).pathname));
  const lan = node.base.replace("127.0.0.1", lanAddress());
  await pp.goto(lan + "/map");
  await mapReady(pp);
  assert.equal(await pp.evaluate(() => window.aidmeshMap.querySourceFeatures("doors").length), 0);
  assert.ok(!phoneAsked.includes("/api/v1/people"), "a phone without the PIN did not ask for people");
  await pp.evaluate((pin) => sessionStorage.setItem("pin", pin), PIN);
  await pp.click("nav button[data-tab=needs]");
  await pp.click("nav button[data-tab=map]");
  await waitFor("the door, with the PIN", () => pp.evaluate((id) => window.aidmeshMap
    .querySourceFeatures("doors").some((f) => f.properties.id === id), ada.id));
  await pp.click("nav button[data-tab=post]");
  await pp.click("#use-location");
  assert.match(await pp.textContent("#post-where"), /only to secure \(https\) pages/);
  await phone.close();

  // axe-core on the map view (the page's CSP lets no injected script in: bypassed here).
  const axeCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
  const p2 = await axeCtx.newPage();
  await p2.goto(node.base + "/map");
  await mapReady(p2);
  await p2.addScriptTag({ path: axePath });
  const result = await p2.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
  }));
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} at ` + v.nodes.map((n) => n.target.join(" ")).join(", ")), []);
  await axeCtx.close();
});

test("no map installed: the map view says how to add one, loads no map script, and the lists work", async (t) => {
  const node = await startNode(t, "Vadoclaro");
  await post(node.base, "needs", { title: "Mantas", category: "shelter", lat: 40.4075, lon: -3.6930 });
  const browser = await launch(t, WEBGL);
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const asked = [];
  page.on("request", (r) => asked.push(new URL(r.url()).pathname));
  await page.goto(node.base + "/map");
  await page.locator("#map-none").waitFor();
  assert.match(await page.textContent("#map-none"), /aidmesh map add FILE/);
  assert.ok(await page.locator("#map-box").isHidden());
  assert.ok(!asked.some((p) => p.startsWith("/vendor/")), "no map script loaded: " + asked.join(" "));
  await page.click("nav button[data-tab=needs]");
  await page.locator("#needs li", { hasText: "Mantas" }).waitFor();

  // A map file damaged after it was installed: the node says so (503), and so does the page.
  mkdirSync(join(node.dir, "map"), { recursive: true });
  writeFileSync(join(node.dir, "map", "tiles.pmtiles"), "not a map at all");
  await page.click("nav button[data-tab=map]");
  await waitFor("the damaged map said", async () => (await page.textContent("#map-problem")).length > 0);
  assert.match(await page.textContent("#map-problem"), /map/i);
  assert.ok(await page.locator("#map-box").isHidden());

  // The vendored scripts: gzipped, with an ETag that answers 304, kept a day.
  const r = await fetch(node.base + "/vendor/maplibre-gl-csp.js", { headers: { "accept-encoding": "gzip" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.match(r.headers.get("cache-control"), /max-age=86400/);
  assert.match(r.headers.get("content-security-policy"), /default-src 'self'/);
  assert.ok((await r.text()).includes("setWorkerUrl"), "fetch decompressed MapLibre");
  const again = await fetch(node.base + "/vendor/maplibre-gl-csp.js", { headers: { "accept-encoding": "gzip",
    "if-none-match": r.headers.get("etag") } });
  assert.equal(again.status, 304);
  const plain = await fetch(node.base + "/vendor/pmtiles.js", { headers: { "accept-encoding": "identity" } });
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.ok((await plain.text()).startsWith('"use strict";var pmtiles'));
});
