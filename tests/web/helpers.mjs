// Shared by the issue-13 browser tests (i18n, print, a11y, desk): a real node in a
// temporary directory and Debian's Chromium driven by playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const bin = process.env.AIDMESH_BIN || join(root, "target", "debug", "aidmesh");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

/** Polls `fn` until it returns something truthy; fails after `ms` naming `what`. */
export async function waitFor(what, fn, ms = 15000) {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() - start > ms) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a node (`init` + `up`): { base, dir, cli, up, down }. `upArgs` go to `up`. */
export async function startNode(t, community = "Elm Street", extra = [], upArgs = [], api0 = "127.0.0.1:0") {
  assert.ok(existsSync(bin), `aidmesh binary not found at ${bin}: run cargo build -p aidmesh`);
  const dir = mkdtempSync(join(tmpdir(), "aidmesh-web-13-"));
  execFileSync(bin, ["--data-dir", dir, "init", "--community", community, ...extra]);
  const n = { dir, proc: null, base: null };
  n.cli = (...args) => execFileSync(bin, ["--data-dir", dir, ...args], { encoding: "utf8" });
  n.up = async (api = api0) => {
    rmSync(join(dir, "api.addr"), { force: true });
    n.proc = spawn(bin, ["--data-dir", dir, "up", "--listen", "/ip4/127.0.0.1/tcp/0",
      "--api", api, "--no-mdns", ...upArgs], { stdio: "ignore" });
    n.base = await waitFor("the node's API address", async () => {
      const a = readFileSync(join(dir, "api.addr"), "utf8").trim().replace("0.0.0.0", "127.0.0.1");
      const r = await fetch(`http://${a}/api/v1/status`);
      return r.ok && `http://${a}`;
    });
    return n.base;
  };
  n.down = async () => {
    if (!n.proc) return;
    const p = n.proc;
    n.proc = null;
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await gone;
  };
  t.after(async () => {
    await n.down();
    rmSync(dir, { recursive: true, force: true });
  });
  await n.up();
  return n;
}

/** Launches Chromium, closed when the test ends. */
export async function launch(t) {
  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  t.after(() => browser.close());
  return browser;
}

/** Posts a need or offer through the API. */
export async function post(base, kind, body) {
  const r = await fetch(`${base}/api/v1/${kind}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`post ${kind}: ${r.status} ${await r.text()}`);
  return r.json();
}
