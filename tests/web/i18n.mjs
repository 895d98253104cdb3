// Languages on the page (issue 13): chosen from the browser's languages, switched by
// the visible switch and remembered; categories, urgencies and times translated; what
// people typed (any script) shown as typed. Run by tests/tests/web_i18n.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNode, launch, post } from "./helpers.mjs";

test("a Spanish browser gets Spanish; the switch changes it and is remembered", async (t) => {
  const node = await startNode(t);
  await post(node.base, "needs", { title: "Agua potable para 4", category: "water", urgency: "high" });
  await post(node.base, "needs", { title: "ماء للشرب", category: "food", place: "شارع النيل 3" });
  const browser = await launch(t);
  const ctx = await browser.newContext({ locale: "es-ES", viewport: { width: 412, height: 915 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(node.base + "/");
  const card = page.locator("#needs li", { hasText: "Agua potable para 4" });
  await card.waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "es");
  assert.equal(await page.getAttribute("html", "dir"), "ltr");
  assert.equal(await page.textContent("nav button[data-tab=needs]"), "Necesidades");
  assert.equal(await page.inputValue("#lang"), "es");
  const text = await card.textContent();
  assert.match(text, /alta/, "urgency translated: " + text);
  assert.match(text, /agua e higiene/, "category translated: " + text);
  assert.match(text, /ahora|hace/, "relative time in Spanish: " + text);
  assert.match(await page.textContent("#meta"), /registros/);
  // Arabic typed by someone: shown as typed, its direction left to the text.
  const ar = page.locator("#needs li", { hasText: "ماء للشرب" });
  assert.equal(await ar.locator("h2").textContent(), "ماء للشرب");
  assert.equal(await ar.locator("h2").getAttribute("dir"), "auto");
  assert.equal(await ar.locator("h2").evaluate((e) => getComputedStyle(e).direction), "rtl");
  assert.match(await ar.textContent(), /Dónde: شارع النيل 3/);

  // The switch: English, at once, and still English after a reload.
  await page.selectOption("#lang", "en");
  await page.locator("nav button[data-tab=needs]", { hasText: "Needs" }).waitFor();
  await page.locator("#needs li", { hasText: "water and hygiene" }).waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await card.textContent(), /high/);
  await page.reload();
  await page.locator("#needs li", { hasText: "Agua potable para 4" }).waitFor();
  assert.equal(await page.textContent("nav button[data-tab=needs]"), "Needs");
  assert.equal(await page.inputValue("#lang"), "en");

  // An English browser starts in English; Spanish chosen there is remembered too.
  const en = await (await browser.newContext({ locale: "en-GB" })).newPage();
  await en.goto(node.base + "/");
  await en.locator("#needs li", { hasText: "Agua potable para 4" }).waitFor();
  assert.equal(await en.textContent("nav button[data-tab=post]"), "+ Post");
  await en.selectOption("#lang", "es");
  await en.locator("nav button[data-tab=post]", { hasText: "+ Publicar" }).waitFor();
  await en.reload();
  await en.locator("#needs li", { hasText: "agua e higiene" }).waitFor();
  assert.equal(await en.textContent("nav button[data-tab=post]"), "+ Publicar");
  assert.deepEqual(errors, []);
});
