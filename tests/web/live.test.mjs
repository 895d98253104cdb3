// A hub full of phones (issue 17): the page in Debian's Chromium keeps its board current
// from the stream, without fetching lists again, and reads little per posted need.
// Run with `node --test` (after `cargo build -p aidmesh`), as tests/tests/web_page.rs does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNode, launch, waitFor } from "./helpers.mjs";

// A node of its own and a browser, stopped (and the node's directory removed) when the
// test ends: { base, browser, post }.
async function startHub(t) {
  const node = await startNode(t);
  const hub = { base: node.base };
  hub.post = async (path, body) => {
    const r = await fetch(hub.base + "/api/v1/" + path, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    assert.ok(r.ok, path + " answered " + r.status);
    return r.json();
  };
  hub.browser = await launch(t);
  return hub;
}

// The page's own requests (this node, not the favicon), as "GET /path?query".
function recordRequests(page, base) {
  const seen = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin === base && u.pathname !== "/favicon.ico") seen.push(r.method() + " " + u.pathname + u.search);
  });
  return seen;
}

test("a new need appears from the stream without fetching a list again; start-up is the board and the stream (issue 17)", async (t) => {
  const hub = await startHub(t);
  for (let i = 0; i < 3; i++) await hub.post("needs", { title: `Sandbags for house ${i}`, category: "cleanup" });
  const page = await hub.browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const requests = recordRequests(page, hub.base);
  await page.goto(hub.base + "/");
  await page.locator("#needs li", { hasText: "Sandbags for house 2" }).waitFor();
  await waitFor("the stream to be open", async () => requests.includes("GET /api/v1/stream"));
  const api = requests.filter((r) => r.includes("/api/"));
  assert.deepEqual(api.sort(), ["GET /api/v1/board?limit=30", "GET /api/v1/stream"],
    "start-up asks the API twice: the board and the stream");
  const before = requests.length;

  const item = await hub.post("needs", { title: "Insulin for Mrs Ada", category: "medical", urgency: "life-threatening" });
  const card = page.locator("#needs li").first();
  await card.filter({ hasText: "Insulin for Mrs Ada" }).waitFor({ timeout: 5000 });
  assert.equal(await card.getAttribute("data-id"), item.id, "the most urgent need is drawn first");
  assert.match(await page.locator("#needs-more").innerText(), /Showing 4 of 4/);
  // A change made elsewhere redraws the card in place; "done" takes it off the board.
  await hub.post(`items/${item.short_id}/status`, { status: "claimed", by: "Ana" });
  await page.locator("#needs li", { hasText: "Insulin" }).locator(".s-claimed").waitFor({ timeout: 5000 });
  await hub.post(`items/${item.short_id}/status`, { status: "fulfilled" });
  await page.locator("#needs li", { hasText: "Insulin" }).waitFor({ state: "detached", timeout: 5000 });
  assert.match(await page.locator("#needs-more").innerText(), /Showing 3 of 3/);
  assert.deepEqual(requests.slice(before), [], "no request for a need posted, claimed or done elsewhere");
  assert.deepEqual(errors, []);
});

test("bytes one page reads per posted need on a board of 1,000 needs and 500 offers (issue 17)", async (t) => {
  const hub = await startHub(t);
  const categories = ["water", "food", "medical", "shelter"];
  const urgencies = ["low", "normal", "high"];
  let next = 0;
  const N = 1500;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let k = next++; k < N; k = next++) {
      await hub.post(k < 1000 ? "needs" : "offers", { title: `${categories[k % 4]} for the family at number ${k}`,
        category: categories[k % 4], urgency: urgencies[k % 3], qty: 1 + (k % 9), place: `${k % 120} River Road`,
        details: "Ground floor, ring twice; the stairs are flooded." });
    }
  }));
  const page = await hub.browser.newPage({ viewport: { width: 412, height: 915 } });
  // The page's 30-second timer is run by hand below.
  await page.clock.install();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let bytes = 0;
  let streamId = null;
  cdp.on("Network.requestWillBeSent", (e) => { if (e.request.url.endsWith("/api/v1/stream")) streamId = e.requestId; });
  // Bodies as received (the stream's too, as it arrives), plus each answer's head.
  cdp.on("Network.dataReceived", (e) => { bytes += e.dataLength; });
  cdp.on("Network.responseReceived", (e) => {
    bytes += Object.entries(e.response.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 17);
  });
  await page.goto(hub.base + "/");
  await page.locator("#needs li[data-id]").first().waitFor();
  await waitFor("the stream to be open", async () => streamId);
  const atStart = bytes;

  const POSTS = 10;
  for (let i = 0; i < POSTS; i++) {
    await hub.post("needs", { title: `Posted need ${i}: water for 4 people`, category: "water",
      urgency: "life-threatening", place: "7 Oak Ave", qty: 20, unit: "litres" });
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.locator("#needs li", { hasText: `Posted need ${POSTS - 1}:` }).waitFor({ timeout: 10000 });
  await waitFor("every posted need", async () =>
    (await page.locator("#needs li", { hasText: "Posted need" }).count()) === POSTS);
  const streamed = bytes - atStart;
  // The timer's conditional refresh: the board changed, so one full answer...
  const beforeTimer = bytes;
  let answer = page.waitForResponse((r) => r.url().includes("/api/v1/board"));
  await page.clock.runFor(30000);
  assert.equal((await answer).status(), 200);
  await new Promise((r) => setTimeout(r, 200));
  const timerFull = bytes - beforeTimer;
  // ... and with nothing new, 304.
  const before304 = bytes;
  answer = page.waitForResponse((r) => r.url().includes("/api/v1/board"));
  await page.clock.runFor(30000);
  assert.equal((await answer).status(), 304);
  await new Promise((r) => setTimeout(r, 200));
  const timer304 = bytes - before304;
  // At one post a second, one full refresh per 30 posts.
  const perPost = streamed / POSTS + timerFull / 30;
  console.log(`start-up ${atStart} B; stream ${Math.round(streamed / POSTS)} B per posted need; ` +
    `timer refresh ${timerFull} B (changed) / ${timer304} B (304); ` +
    `at 1 post/s: ${Math.round(perPost)} B per posted need`);
  assert.ok(perPost < 20000, `${perPost} B per posted need`);
  assert.ok(timer304 < 1000, `a 304 refresh read ${timer304} B`);
});
