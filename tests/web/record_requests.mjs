// Records the requests the real page makes in Chromium over one lifecycle, for
// tests/tests/phones_in_step.rs, which compares them with the load harness's phone
// (tests/src/phones.rs) over the same lifecycle. Not a test file of its own.
//
//   node record_requests.mjs http://127.0.0.1:PORT
//
// Phases: start (until the board is drawn and the stream open); a need posted by the
// hub computer (until its card is drawn); the refresh timer fired; fired again. Prints
// one JSON line: an array of phases, each the sorted list of "GET /path?query", with
// " (conditional)" when the request carried If-None-Match.
import { launchBrowser, waitFor } from "./helpers.mjs";

const base = process.argv[2];

const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  await page.clock.install();
  // The page's first safety refresh comes at a random moment of the first 30 s, and
  // the installed clock still runs in real time until runFor: drawn early, it fell
  // into the "a need posted" phase (a CI run failed so). Drawn last, it fires in the
  // first timer phase, as the harness's manual tick does.
  await page.addInitScript(() => { Math.random = () => 0.9999; });
  const seen = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin !== base || u.pathname === "/favicon.ico") return;
    const cond = r.headers()["if-none-match"] ? " (conditional)" : "";
    seen.push(r.method() + " " + u.pathname + u.search + cond);
  });
  const phases = [];
  let mark = 0;
  const phase = () => { phases.push(seen.slice(mark).sort()); mark = seen.length; };

  await page.goto(base + "/");
  await page.locator("#needs li[data-id]").first().waitFor();
  await waitFor("the stream", async () => seen.some((s) => s.includes("/api/v1/stream")));
  await new Promise((r) => setTimeout(r, 300));
  phase();

  const r = await fetch(base + "/api/v1/needs", { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: "Recorded need", category: "water", urgency: "life-threatening" }) });
  if (!r.ok) throw new Error("post answered " + r.status);
  await page.locator("#needs li", { hasText: "Recorded need" }).waitFor({ timeout: 10000 });
  await new Promise((r) => setTimeout(r, 300));
  phase();

  for (let tick = 0; tick < 2; tick++) {
    const answer = page.waitForResponse((r) => r.url().includes("/api/v1/board"));
    await page.clock.runFor(30000);
    await answer;
    await new Promise((r) => setTimeout(r, 300));
    phase();
  }
  console.log(JSON.stringify(phases));
} finally {
  await browser.close();
}
