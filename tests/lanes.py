#!/usr/bin/env python3
"""Runs the workspace's test binaries in two lanes at once (called by tests/run.sh).

Most of the suite's wall time is spent waiting: on nodes syncing, on timers, on a
browser. `cargo test` runs one test binary after another; this script builds them all
with `cargo test --no-run`, then runs the network-namespace and field tests (many
nodes, timing-sensitive, root) one after another in one lane, and every other test
binary one after another in a second lane, beside it. Each binary gets the same
arguments (`--include-ignored`), working directory (its package's) and environment as
under `cargo test`. A binary that fails beside the other lane is run again alone,
after both lanes end, with nothing beside it: the suite passes only if it then passes
(and it is named as failing beside other tests, for someone to make it sturdier). A
failing binary's output is printed; the script exits 1 if any failed alone, naming them.

    python3 tests/lanes.py            # what tests/run.sh does
    AIDMESH_LANES=1 tests/run.sh      # one lane, as plain `cargo test` would
"""

import json
import os
import subprocess
import sys
import threading
import time

# The first lane: tests that start many nodes in network namespaces or measure the
# mesh's behaviour over time. They run one after another, never beside each other.
FIELD = {
    "field_amp", "field_scale", "field_beacon", "field_discovery", "lan", "phones",
    "phones_load", "phones_in_step", "honest_warnings", "hostile_phone", "partition",
    "thin_link", "compact_crash", "crash_loop", "dial_refused", "rogue", "relay",
}


def build():
    """Builds every test binary; returns [(name, kind, executable, package dir)]."""
    cmd = ["cargo", "test", "--workspace", "--no-run", "--message-format=json-render-diagnostics"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=False)
    if out.returncode != 0:
        sys.exit(f"tests/lanes.py: `{' '.join(cmd)}` failed (exit {out.returncode})")
    bins = []
    for line in out.stdout.decode().splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-artifact" or not m.get("executable"):
            continue
        if not m.get("profile", {}).get("test"):
            continue
        t = m["target"]
        bins.append((t["name"], t["kind"][0], m["executable"],
                     os.path.dirname(m["manifest_path"])))
    return bins


def run_one(binary, results, lock, when=""):
    name, kind, exe, cwd = binary
    env = dict(os.environ)
    # What cargo sets for a test at run time.
    env["CARGO_MANIFEST_DIR"] = cwd
    env.setdefault("CARGO", "cargo")
    start = time.monotonic()
    p = subprocess.run([exe, "--include-ignored"], cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    took = time.monotonic() - start
    label = f"{os.path.relpath(cwd)}: {kind} {name}"
    with lock:
        results.append((binary, label, p.returncode))
        status = "ok  " if p.returncode == 0 else "FAIL"
        print(f"{status} {took:7.1f} s  {label}{when}", flush=True)
        if p.returncode != 0:
            sys.stdout.write(p.stdout.decode(errors="replace"))
            print(f"---- end of {label}", flush=True)


def run_lane(lane, results, lock):
    for binary in lane:
        run_one(binary, results, lock)


def main():
    bins = build()
    one_lane = os.environ.get("AIDMESH_LANES") == "1"
    field = [b for b in bins if b[0] in FIELD and b[1] == "test"]
    rest = [b for b in bins if b not in field]
    lanes = [field + rest] if one_lane else [field, rest]
    print(f"== {len(bins)} test binaries in {len(lanes)} lane(s)", flush=True)
    results, lock = [], threading.Lock()
    start = time.monotonic()
    threads = [threading.Thread(target=run_lane, args=(lane, results, lock)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in results if r[2] != 0]
    print(f"== {len(results)} test binaries in {time.monotonic() - start:.0f} s, "
          f"{len(failed)} failed", flush=True)
    again = []
    if failed and not one_lane:
        print("== the failed ones again, each alone", flush=True)
        for binary, _, _ in failed:
            run_one(binary, again, lock, " (alone)")
    else:
        again = failed
    for _, label, _ in failed:
        if any(l == label and rc == 0 for _, l, rc in again):
            print(f"FAILED BESIDE THE OTHER LANE, PASSED ALONE: {label}")
    still = [(label, rc) for _, label, rc in again if rc != 0]
    for label, rc in still:
        print(f"FAILED: {label} (exit {rc})")
    sys.exit(1 if still else 0)


if __name__ == "__main__":
    main()
