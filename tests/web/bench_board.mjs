// The page on a big board (issue 28): a phone-sized Chromium page against a node that
// already holds many open needs and offers (started by `bench_bounds --page`, which
// passes its API address). Prints, for docs/benchmarks.md ("Status and the first
// screen at size"):
// - the first screen: from navigation start to the end of the frame that first shows a
//   need card (as the busy-board test measures it), median of 3, at CPU 1x and 4x;
// - a word search: from typing to the list showing its answer;
// - "Show more": from the click to 30 more cards drawn;
// - every request the page made and the bytes it downloaded before the first cards.
//
//   node tests/web/bench_board.mjs http://127.0.0.1:PORT
import { launchBrowser, waitFor, markFirstCards } from "./helpers.mjs";

const base = process.argv[2];
if (!base) {
  console.error("usage: node bench_board.mjs http://HOST:PORT (a running node)");
  process.exit(2);
}
const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 3 };
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const browser = await launchBrowser();
try {
  const firstScreen = async (slower) => {
    const context = await browser.newContext(phone);
    await context.addInitScript(markFirstCards);
    const page = await context.newPage();
    let bytes = 0;
    const requests = [];
    page.on("response", async (r) => {
      requests.push(new URL(r.url()).pathname);
      const len = Number((await r.allHeaders())["content-length"] || 0);
      bytes += len;
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: slower });
    await page.goto(base + "/", { waitUntil: "commit" });
    await page.locator("#needs li[data-id]").first().waitFor({ state: "visible", timeout: 60000 });
    const ms = await waitFor("the first-cards time", () => page.evaluate(() => window.firstCardsMs), 60000);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 1 });
    return { ms, page, context, bytes, requests };
  };

  for (const slower of [1, 4]) {
    const runs = [];
    let last;
    for (let i = 0; i < 3; i++) {
      last = await firstScreen(slower);
      runs.push(last.ms);
      if (i < 2) await last.context.close();
    }
    console.log(`first screen, CPU ${slower}x: median ${Math.round(median(runs))} ms (${runs.map(Math.round).join(", ")} ms)`
      + `; ${last.requests.length} requests, ${(last.bytes / 1024).toFixed(1)} KB by content-length`);
    if (slower === 1) {
      const { page } = last;
      const more = page.locator("#needs-more");
      const shown = await more.innerText();
      console.log(`  the page says: ${shown.trim()}`);
      const cards = page.locator("#needs li[data-id]");
      // Show more: 30 more cards.
      const before = await cards.count();
      let t = Date.now();
      await more.getByRole("button", { name: "Show more" }).click();
      await waitFor("30 more cards", async () => (await cards.count()) >= before + 30, 60000);
      console.log(`  show more: ${Date.now() - t} ms (${before} → ${await cards.count()} cards)`);
      // A word search (titles "Drinking water for flat N"): every card shown has 4242 in it.
      t = Date.now();
      await page.fill("#f-q", "flat 4242");
      const answered = await waitFor("the search's answer", async () => {
        const texts = await cards.allInnerTexts();
        return texts.length > 0 && texts.length < before && texts.every((x) => /4242/.test(x));
      }, 60000).catch(() => false);
      console.log(answered
        ? `  search "flat 4242": ${Date.now() - t} ms; the page says: ${(await more.innerText()).trim()}`
        : `  search "flat 4242": NO ANSWER on the page within 60 s; the page says: ${(await more.innerText()).trim()}; first card: ${(await cards.first().innerText().catch(() => "none")).slice(0, 80)}`);
    }
    await last.context.close();
  }
} finally {
  await browser.close();
}
