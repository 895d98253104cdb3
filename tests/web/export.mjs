// Consent to share with responders on the page (issue 12): the registration form's
// checkbox, unticked by default, is what the node records, and the card says it.
// Run by tests/tests/web_export.rs (after `cargo build -p aidmesh`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.AIDMESH_BIN || join(root, "target", "debug", "aidmesh");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

async function waitFor(what, fn, ms = 15000) {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() - start > ms) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("the registration form asks about sharing with responders, default no", async (t) => {
  assert.ok(existsSync(bin), `aidmesh binary not found at ${bin}: run cargo build -p aidmesh`);
  const dir = mkdtempSync(join(tmpdir(), "aidmesh-web-export-"));
  execFileSync(bin, ["--data-dir", dir, "init", "--community", "Elm Street"]);
  const node = spawn(bin, ["--data-dir", dir, "up", "--listen", "/ip4/127.0.0.1/tcp/0",
    "--api", "127.0.0.1:0", "--no-mdns"], { stdio: "ignore" });
  let browser;
  t.after(async () => {
    if (browser) await browser.close();
    node.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const base = await waitFor("the node's API address", async () => {
    const a = readFileSync(join(dir, "api.addr"), "utf8").trim();
    const r = await fetch(`http://${a}/api/v1/status`);
    return r.ok && `http://${a}`;
  });
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
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
