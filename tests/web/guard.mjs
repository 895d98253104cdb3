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
import { createServer } from "node:http";
import { startNode, launch, waitFor, lanAddress } from "./helpers.mjs";

const PIN = "246810";

test("a phone at the hub works; a hostile page and a rebinding name change and read nothing", async (t) => {
  const node = await startNode(t, "Elm Street", [], ["--volunteer-pin", PIN], "0.0.0.0:0",
    { env: { AIDMESH_POSTS_PER_MINUTE: "2" } });
  let evil;
  t.after(() => { if (evil) evil.close(); });
  const port = node.base.split(":").pop();
  const hub = `http://127.0.0.1:${port}`;
  const post = (path, body) => fetch(hub + "/api/v1/" + path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  }).then((r) => r.json());
  const ada = await post("people", { name: "Ada Lovelace", place: "14 River Rd", every: "12h" });
  assert.ok(ada.id, JSON.stringify(ada));
  const people = async () => (await (await fetch(hub + "/api/v1/people")).json()).people;
  const needs = async () => (await (await fetch(hub + "/api/v1/items?status=all")).json()).items;

  const browser = await launch(t, ["--host-resolver-rules=MAP attacker.test 127.0.0.1"]);

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
