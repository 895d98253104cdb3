// Consent to share with responders on the page (issue 12): the registration form's
// checkbox, unticked by default, is what the node records, and the card says it.
// Run by tests/tests/web_export.rs (after `cargo build -p aidmesh`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startNode, launch } from "./helpers.mjs";

test("the registration form asks about sharing with responders, default no", async (t) => {
  const { base } = await startNode(t);
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");
  await page.click("nav button[data-tab=people]");
  const form = page.locator("#person-form");
  await form.waitFor();
  assert.equal(await form.locator("input[name=share]").isChecked(), false, "unticked by default");
  const add = async (name, share) => {
    await form.locator("input[name=name]").fill(name);
    await form.locator("input[name=place]").fill("14 River Rd");
    if (share) await form.locator("input[name=share]").check();
    await form.locator("button[type=submit]").click();
    await page.locator("#people li", { hasText: name }).waitFor();
  };
  await add("Ada Okafor", true);
  await add("Bo Lindqvist", false);
  const people = (await (await fetch(base + "/api/v1/people")).json()).people;
  const shared = Object.fromEntries(people.map((p) => [p.name, p.share_with_responders]));
  assert.deepEqual(shared, { "Ada Okafor": true, "Bo Lindqvist": false });
  const card = (name) => page.locator("#people li", { hasText: name }).locator(".sharing").textContent();
  assert.equal(await card("Ada Okafor"), "Shared with responders");
  assert.equal(await card("Bo Lindqvist"), "Not shared with responders");
  // The PFIF export holds Ada only.
  const pfif = await (await fetch(base + "/api/v1/export?format=pfif")).text();
  assert.ok(pfif.includes("Ada Okafor") && !pfif.includes("Bo Lindqvist"), pfif);
  assert.deepEqual(errors, []);
});
