// Shared by every browser test in tests/web: a real node in a temporary directory
// (`startNode`), Debian's Chromium driven by playwright-core (`launch`), and small
// helpers (`waitFor`, `post`, `lanAddress`).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir, networkInterfaces } from "node:os";
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

/**
 * Starts a node (`init` + `up`), stopped and removed when the test ends:
 * { base, dir, cli, up, down }. `extra` go to `init`, `upArgs` to `up`, which serves
 * the API on `api0`. Options: `make`, the command that makes the node instead of
 * `init` (`start`, `join`); `env`, added to the environment of `up`.
 */
export async function startNode(t, community = "Elm Street", extra = [], upArgs = [], api0 = "127.0.0.1:0",
  { make = "init", env = {} } = {}) {
  assert.ok(existsSync(bin), `aidmesh binary not found at ${bin}: run cargo build -p aidmesh`);
  const dir = mkdtempSync(join(tmpdir(), "aidmesh-web-"));
  execFileSync(bin, ["--data-dir", dir, make, "--community", community, ...extra]);
  const n = { dir, proc: null, base: null };
  n.cli = (...args) => execFileSync(bin, ["--data-dir", dir, ...args], { encoding: "utf8" });
  n.up = async (api = api0) => {
    rmSync(join(dir, "api.addr"), { force: true });
    n.proc = spawn(bin, ["--data-dir", dir, "up", "--listen", "/ip4/127.0.0.1/tcp/0",
      "--api", api, "--no-mdns", ...upArgs], { stdio: "ignore", env: { ...process.env, ...env } });
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

/** Launches Chromium (with `args` besides the usual), closed when the test ends. */
export async function launch(t, args = []) {
  const browser = await launchBrowser(args);
  t.after(() => browser.close());
  return browser;
}

/** Launches Chromium (with `args` besides the usual); the caller closes it. */
export async function launchBrowser(args = []) {
  return chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", ...args],
  });
}

/** This machine's first non-loopback IPv4 address (a phone on the hub's Wi-Fi uses it). */
export function lanAddress() {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list || []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  throw new Error("this test needs a non-loopback IPv4 address on this machine");
}

/** Posts a need or offer through the API. */
export async function post(base, kind, body) {
  const r = await fetch(`${base}/api/v1/${kind}`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`post ${kind}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Chromium's flags for WebGL with no GPU (SwiftShader, its software renderer): the map. */
export const WEBGL = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"];

/**
 * For `context.addInitScript`: sets `window.firstCardsMs` (ms from navigation start)
 * at the end of the frame that first shows a need card: the busy board's first-screen
 * time, measured in the page.
 */
export function markFirstCards() {
  new MutationObserver((_, seen) => {
    if (!document.querySelector("#needs li[data-id]")) return;
    seen.disconnect();
    // After the frame that lays out and paints them.
    requestAnimationFrame(() => setTimeout(() => { window.firstCardsMs = performance.now(); }));
  }).observe(document, { childList: true, subtree: true });
}
