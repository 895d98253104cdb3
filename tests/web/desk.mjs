// The desk (issue 13): a need for someone in the queue in one short form, the common
// categories one tap, and what was typed kept when the node restarts mid-entry (and the
// page is reloaded), until it is posted. Run by tests/tests/web_desk.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNode, launch } from "./helpers.mjs";

test("the desk form: one tap for a category, the draft survives a node restart", async (t) => {
  const node = await startNode(t);
  const addr = node.base.replace("http://", "");
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(node.base + "/");
  await page.click("nav button[data-tab=post]");
  await page.locator("#category option[value=medical]").waitFor({ state: "attached" });
  // Large targets: every chip and field at least 44 px high.
  for (const h of await page.locator("#quick-cat button, #post-form input[name=title]")
    .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height))) {
    assert.ok(h >= 44, "a target only " + h + " px high");
  }
  // One tap: the category is chosen and the chip shows it.
  await page.click("#quick-cat button[data-cat=medical]");
  assert.equal(await page.inputValue("#category"), "medical");
  assert.equal(await page.getAttribute("#quick-cat button[data-cat=medical]", "aria-pressed"), "true");
  await page.fill("#post-form input[name=title]", "Insulin for Mrs Diaz");
  await page.selectOption("#post-form select[name=urgency]", "high");
  await page.fill("#post-form input[name=place]", "Sports hall, bed 12");
  await page.fill("#post-form input[name=contact]", "ask at the desk");

  // The node goes down mid-entry: posting fails, and what was typed stays.
  await node.down();
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result.err").waitFor();
  assert.equal(await page.inputValue("#post-form input[name=title]"), "Insulin for Mrs Diaz");
  // It comes back on the same address; the page is reloaded: the draft is restored.
  await node.up(addr);
  await page.reload();
  await page.click("nav button[data-tab=post]");
  await page.locator("#category option[value=medical]").waitFor({ state: "attached" });
  await page.waitForFunction(() => document.querySelector("#post-form input[name=title]").value !== "");
  assert.equal(await page.inputValue("#post-form input[name=title]"), "Insulin for Mrs Diaz");
  assert.equal(await page.inputValue("#category"), "medical");
  assert.equal(await page.inputValue("#post-form select[name=urgency]"), "high");
  assert.equal(await page.inputValue("#post-form input[name=place]"), "Sports hall, bed 12");
  assert.equal(await page.getAttribute("#quick-cat button[data-cat=medical]", "aria-pressed"), "true");

  // Posted: it is on the board, and the form and the draft are empty.
  await page.click("#post-form button[type=submit]");
  await page.locator("#post-result", { hasText: "Posted" }).waitFor();
  const needs = (await (await fetch(node.base + "/api/v1/needs")).json()).items;
  const got = needs.find((n) => n.title === "Insulin for Mrs Diaz");
  assert.ok(got, JSON.stringify(needs));
  assert.equal(got.category, "medical");
  assert.equal(got.urgency, "high");
  assert.equal(await page.inputValue("#post-form input[name=title]"), "");
  assert.equal(await page.evaluate(() => localStorage.getItem("post-draft")), null);
  await page.reload();
  await page.click("nav button[data-tab=post]");
  await page.locator("#category option[value=medical]").waitFor({ state: "attached" });
  assert.equal(await page.inputValue("#post-form input[name=title]"), "");
  assert.deepEqual(errors, []);
});
