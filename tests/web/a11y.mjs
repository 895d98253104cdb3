// Eyes and hands (issue 13): axe-core on every tab in both languages (no serious or
// critical violations, WCAG 2.1 A/AA rules, contrast included), the tabs reachable and
// used by keyboard alone with a visible focus, and no sideways scrolling at 320 px wide
// or at 200 % zoom. Run by tests/tests/web_a11y.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { startNode, launch, post } from "./helpers.mjs";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const TABS = ["needs", "offers", "map", "match", "people", "hubs", "post"];

async function seed(base) {
  const call = async (path, body) => {
    const r = await fetch(base + "/api/v1" + path, { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(path + ": " + (await r.text()));
    return r.json();
  };
  await call("/hubs", { name: "Elm St hall", services: ["water", "charging"] });
  await post(base, "needs", { title: "Drinking water for 4", category: "water", urgency: "life-threatening",
    place: "14 River Rd", qty: 20, unit: "litres" });
  await post(base, "needs", { title: "Baby formula", category: "food", urgency: "high" });
  await post(base, "offers", { title: "Water bottles", category: "water", qty: 100 });
  await call("/alerts", { headline: "Boil water before drinking", severity: "severe", area: "Elm St" });
  await call("/people", { name: "Ada Okafor", place: "12 Mill Lane", every: "12h", consent: "self",
    risks: ["oxygen"] });
}

async function axe(page, what) {
  const result = await page.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
  }));
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ` +
    v.nodes.map((n) => n.target.join(" ")).join(", ")), [], what);
  assert.ok(result.passes.length > 3, "axe ran its rules on " + what);
}

test("axe-core finds nothing serious on any tab, in English and Spanish", async (t) => {
  const node = await startNode(t);
  await seed(node.base);
  const browser = await launch(t);
  for (const locale of ["en-GB", "es-ES"]) {
    // The page's CSP allows no injected script; axe is added by the test only.
    const ctx = await browser.newContext({ locale, bypassCSP: true, viewport: { width: 412, height: 915 } });
    const page = await ctx.newPage();
    await page.goto(node.base + "/");
    await page.locator("#needs li[data-id]").first().waitFor();
    await page.addScriptTag({ path: axePath });
    for (const tab of TABS) {
      await page.click(`nav button[data-tab=${tab}]`);
      if (tab === "people") await page.locator("#people li[data-id]").first().waitFor();
      if (tab === "match") await page.locator("#match li").first().waitFor();
      await axe(page, `${locale} tab ${tab}`);
    }
    for (const path of ["/print", "/print/round"]) {
      await page.goto(node.base + path + "?lang=" + locale.slice(0, 2));
      await page.addScriptTag({ path: axePath });
      await axe(page, `${locale} ${path}`);
    }
    await ctx.close();
  }
});

test("keyboard alone: the tabs are reached and used, and focus is visible", async (t) => {
  const node = await startNode(t);
  await seed(node.base);
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  await page.goto(node.base + "/");
  await page.locator("#needs li[data-id]").first().waitFor();
  // Tab through the page until the "+ Post" tab has focus; it is reached in order.
  const seen = [];
  for (let i = 0; i < 40 && seen.at(-1) !== "post"; i++) {
    await page.keyboard.press("Tab");
    const tab = await page.evaluate(() => document.activeElement?.dataset?.tab || null);
    if (tab) seen.push(tab);
  }
  assert.deepEqual(seen, TABS, "the tabs in order by keyboard");
  // The focused tab shows it: an outline that is not "none".
  const outline = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return s.outlineStyle + " " + s.outlineWidth;
  });
  assert.ok(!outline.startsWith("none") && !outline.endsWith(" 0px"), "visible focus: " + outline);
  // Enter opens it, and the form is filled and sent by keyboard.
  await page.keyboard.press("Enter");
  assert.equal(await page.isVisible("#post-form"), true);
  await page.keyboard.press("Tab");
  let guard = 0;
  while (await page.evaluate(() => document.activeElement?.name) !== "title" && guard++ < 20) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type("Candles and matches");
  await page.keyboard.press("Enter");
  await page.locator("#post-result", { hasText: "Posted" }).waitFor();
});

test("no sideways scrolling at 320 px wide or at 200 % zoom", async (t) => {
  const node = await startNode(t);
  await seed(node.base);
  const browser = await launch(t);
  // 200 % zoom of a 1280-px window is a 640-px-wide layout.
  for (const width of [320, 640]) {
    const page = await browser.newPage({ viewport: { width, height: 800 } });
    await page.goto(node.base + "/");
    await page.locator("#needs li[data-id]").first().waitFor();
    for (const tab of TABS) {
      await page.click(`nav button[data-tab=${tab}]`);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(wide <= width, `tab ${tab} at ${width} px: the page is ${wide} px wide`);
    }
    await page.close();
  }
});
