// The main page's way to the SMS gateway's panel (issue 26): on the hub computer, the
// welfare tab links to /sms saying how many texts wait for review when the node runs
// a gateway, and shows nothing when it does not. Run by tests/tests/web_sms.rs (after
// `cargo build -p aidmesh`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode, launch, waitFor } from "./helpers.mjs";

// A gammu-smsd files-backend configuration with its folders (no daemon is needed: the
// gateway reads the folders, and says the daemon is not seen).
function smsdrc(t) {
  const d = mkdtempSync(join(tmpdir(), "aidmesh-web-smsd-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  for (const f of ["in", "out", "sent"]) mkdirSync(join(d, f));
  const conf = join(d, "smsdrc");
  writeFileSync(conf, `[gammu]\nmodel = dummy\n\n[smsd]\nservice = files\ninboxpath = ${d}/in/\n` +
    `outboxpath = ${d}/out/\nsentsmspath = ${d}/sent/\ninboxformat = unicode\n`);
  return { conf, inbox: join(d, "in") };
}

async function smsBox(page, base) {
  await page.goto(base + "/");
  await page.click("nav button[data-tab=people]");
  await page.locator("#person-form").waitFor();
}

test("the welfare tab links to the SMS panel with the review count, only with a gateway", async (t) => {
  const browser = await launch(t);
  const errors = [];

  const plain = await startNode(t, "Elm Street");
  const p1 = await browser.newPage();
  p1.on("pageerror", (e) => errors.push(e.message));
  await smsBox(p1, plain.base);
  // The status answer has come back when the box would have been filled.
  await waitFor("the SMS status asked", async () =>
    (await (await fetch(plain.base + "/api/v1/sms/status")).json()).gateway === false);
  await p1.waitForTimeout(300);
  assert.equal(await p1.locator("#sms-box").isHidden(), true, "no gateway: no link");

  const { conf, inbox } = smsdrc(t);
  const gw = await startNode(t, "Oak Road", [], ["--sms-gateway", conf]);
  // A binary text always goes to review.
  writeFileSync(join(inbox, "IN20261207_012630_00_+15557778_00.bin"), Buffer.from([0, 1, 0xff, 0x80]));
  await waitFor("the text in review", async () =>
    (await (await fetch(gw.base + "/api/v1/sms/status")).json()).review === 1);
  const p2 = await browser.newPage();
  p2.on("pageerror", (e) => errors.push(e.message));
  await smsBox(p2, gw.base);
  const link = p2.locator("#sms-box a#sms-link");
  await link.waitFor();
  assert.equal(await link.textContent(), "SMS gateway: 1 text to review");
  assert.equal(await link.getAttribute("href"), "/sms");
  await link.click();
  await p2.waitForURL(gw.base + "/sms");
  assert.deepEqual(errors, []);
});
