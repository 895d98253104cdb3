// Makes the screenshots in docs/img/ (issue 13): the page in English and Spanish and a
// printed board, from a real node with a small made-up board. Not a test; run after
// `cargo build -p aidmesh` with: node tests/web/screenshots.mjs
import { join } from "node:path";
import { startNode, launch, post, root } from "./helpers.mjs";

const t = { after: (fn) => cleanups.push(fn) };
const cleanups = [];
try {
  const node = await startNode(t, "Elm Street");
  const call = (path, body) => fetch(node.base + "/api/v1" + path, { method: "POST",
    headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await call("/hubs", { name: "Elm St hall", services: ["water", "charging"] });
  await call("/alerts", { headline: "Boil water before drinking", severity: "severe", area: "Elm St" });
  await post(node.base, "needs", { title: "Insulin for Mrs Diaz", category: "medical",
    urgency: "life-threatening", place: "Sports hall, bed 12" });
  await post(node.base, "needs", { title: "Drinking water for 4", category: "water", urgency: "high",
    qty: 20, unit: "litres", place: "14 River Rd" });
  await post(node.base, "needs", { title: "Pañales talla 3", category: "care", place: "Calle Mayor 5" });
  await post(node.base, "offers", { title: "Generator, 2 kW, with fuel", category: "power" });
  const browser = await launch(t);
  for (const lang of ["en", "es"]) {
    const ctx = await browser.newContext({ locale: lang, viewport: { width: 412, height: 760 } });
    const page = await ctx.newPage();
    await page.goto(node.base + "/");
    await page.locator("#needs li[data-id]").nth(2).waitFor();
    await page.screenshot({ path: join(root, "docs", "img", `page-${lang}.png`) });
    await ctx.close();
  }
  const page = await browser.newPage({ viewport: { width: 794, height: 700 } });
  await page.goto(node.base + "/print?lang=en&url=http://192.168.1.5:8080/");
  await page.screenshot({ path: join(root, "docs", "img", "print-board.png") });
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
