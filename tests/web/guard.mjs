// The HTTP guard in a real browser (Debian's Chromium, playwright-core) against a real
// `aidmesh up` listening on every address, as on a hub:
// - the page opened by a phone at the hub's LAN address still works (Host = LAN ip:port);
// - a hostile page on another origin, open in the volunteer's browser on the hub
//   computer, cannot erase a person or post (form with a JSON-looking text/plain body,
//   no-cors fetch);
// - a DNS-rebinding name that resolves to 127.0.0.1 is refused.
// Run by tests/tests/web_guard.rs (`node --test tests/web/guard.mjs`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir, networkInterfaces } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.AIDMESH_BIN || join(root, "target", "debug", "aidmesh");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const PIN = "246810";

async function waitFor(what, fn, ms = 15000) {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() - start > ms) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function lanAddress() {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list || []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  throw new Error("this test needs a non-loopback IPv4 address on this machine");
}

test("a phone at the hub works; a hostile page and a rebinding name change and read nothing", async (t) => {
  assert.ok(existsSync(bin), `aidmesh binary not found at ${bin}: run cargo build -p aidmesh`);
  const dir = mkdtempSync(join(tmpdir(), "aidmesh-web-guard-"));
  execFileSync(bin, ["--data-dir", dir, "init", "--community", "Elm Street"]);
  const node = spawn(bin, ["--data-dir", dir, "up", "--listen", "/ip4/127.0.0.1/tcp/0",
    "--api", "0.0.0.0:0", "--no-mdns", "--volunteer-pin", PIN],
    { stdio: "ignore", env: { ...process.env, AIDMESH_POSTS_PER_MINUTE: "2" } });
  let browser;
  let evil;
  t.after(async () => {
    if (browser) await browser.close();
    if (evil) evil.close();
    node.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await waitFor("the node's API address", async () => {
    const a = readFileSync(join(dir, "api.addr"), "utf8").trim();
    const p = a.split(":").pop();
    const r = await fetch(`http://127.0.0.1:${p}/api/v1/status`);
    return r.ok && p;
  });
  const hub = `http://127.0.0.1:${port}`;
  const post = (path, body) => fetch(hub + "/api/v1/" + path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }).then((r) => r.json());
  const ada = await post("people", { name: "Ada Lovelace", place: "14 River Rd", every: "12h" });
  assert.ok(ada.id, JSON.stringify(ada));
  const people = async () => (await (await fetch(hub + "/api/v1/people")).json()).people;
  const needs = async () => (await (await fetch(hub + "/api/v1/items?status=all")).json()).items;

  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--host-resolver-rules=MAP attacker.test 127.0.0.1"],
  });

  // A phone at the hub: the page by the LAN address, a need posted through the form,
  // the People tab with the volunteer PIN.
  const lan = `http://${lanAddress()}:${port}`;
  const phone = await browser.newPage({ viewport: { width: 412, height: 915 } });
  const errors = [];
  phone.on("pageerror", (e) => errors.push(e.message));
  await phone.goto(lan + "/");
  await phone.click("nav button[data-tab=post]");
  await phone.fill("#post-form input[name=title]", "Drinking water for 4 people");
  await phone.selectOption("#post-form select[name=category]", "water");
  await phone.click("#post-form button[type=submit]");
  await phone.locator("#post-result", { hasText: "Posted" }).waitFor();
  assert.ok((await needs()).some((i) => i.title === "Drinking water for 4 people"));
  // A phone posting faster than its share (2 a minute here; 10 by default) is told
  // what to do, and what it typed stays in the form.
  const postNeed = async (title) => {
    await phone.fill("#post-form input[name=title]", title);
    await phone.selectOption("#post-form select[name=category]", "water");
    await phone.click("#post-form button[type=submit]");
  };
  await postNeed("Bottled water for the shelter");
  await waitFor("the second need", async () => (await needs()).some((i) => i.title === "Bottled water for the shelter"));
  await postNeed("Water for the school");
  await phone.locator("#post-result.err", { hasText: "This phone has posted a lot in a short time" }).waitFor();
  assert.equal(await phone.inputValue("#post-form input[name=title]"), "Water for the school");
  assert.ok(!(await needs()).some((i) => i.title === "Water for the school"));
  await phone.click("nav button[data-tab=people]");
  await phone.fill("#pin-form input[name=pin]", PIN);
  await phone.click("#pin-form button[type=submit]");
  await phone.locator("#people li", { hasText: "Ada Lovelace" }).waitFor();
  assert.deepEqual(errors, []);

  // A hostile page on another origin, in the browser of the hub computer itself.
  const evilHtml = `<!doctype html><body>
    <form id="f" method="POST" enctype="text/plain" target="sink"
          action="${hub}/api/v1/people/ada/forget">
      <input name='{"confirm":"${ada.id}","x":"' value='"}'>
    </form>
    <iframe name="sink"></iframe>
    <script>
      fetch("${hub}/api/v1/needs", { method: "POST", mode: "no-cors",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ title: "spam from a web page", category: "other" }) })
        .finally(() => { document.getElementById("f").submit(); });
      document.querySelector("iframe").addEventListener("load", () => { document.title = "sent"; });
    </script></body>`;
  evil = createServer((_, res) => { res.setHeader("content-type", "text/html"); res.end(evilHtml); });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilPage = await browser.newPage();
  await evilPage.goto(`http://127.0.0.1:${evil.address().port}/`);
  await waitFor("the hostile form to be submitted", async () => (await evilPage.title()) === "sent");
  assert.equal((await people()).length, 1, "a hostile page erased a person");
  assert.ok(!(await needs()).some((i) => i.title.startsWith("spam")), "a hostile page posted");

  // DNS rebinding: attacker.test now resolves to 127.0.0.1.
  const rebound = await browser.newPage();
  const r = await rebound.goto(`http://attacker.test:${port}/api/v1/people`);
  assert.equal(r.status(), 403);
  assert.ok(!(await r.text()).includes("Ada"), "a rebinding name read the welfare register");
});
