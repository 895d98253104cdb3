// Benchmark of the map view (issue 27), not a test: a real node with the test town's
// tiles and 1,000 positioned needs and offers, the page in a phone-sized Chromium
// (390 x 844, CPU slowed 4x through CDP's Emulation.setCPUThrottlingRate), WebGL by
// SwiftShader (software: no GPU on this machine or CI). Prints what the map adds to the
// page's download (gzipped, tiles apart), how long 1,000 pins take to be drawn, and the
// frames per second of a scripted pan. docs/benchmarks.md quotes it.
//
//   AIDMESH_TEST_TOWN=target/map-town/town-....pmtiles node tests/web/bench_map.mjs [pins] [runs]
//
// (the town: `cargo test -p aidmesh-tests --test web_map -- --include-ignored` builds it,
// or tippecanoe by hand as tests/data/map/README.md says.)
import { startNode, launchBrowser, waitFor, WEBGL } from "./helpers.mjs";

const PINS = Number(process.argv[2] || 1000);
const RUNS = Number(process.argv[3] || 5);
const town = process.env.AIDMESH_TEST_TOWN;
if (!town) throw new Error("set AIDMESH_TEST_TOWN to the test town's PMTiles file");

const cleanups = [];
const t = { after: (f) => cleanups.push(f) };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

try {
  const node = await startNode(t, "Vadoclaro");
  node.cli("map", "add", town);
  // 1,000 items spread over the town (the box of tests/data/map), a fifth of them offers.
  const [w, s, e, n] = [-3.6990, 40.4010, -3.6820, 40.4140];
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const cats = ["water", "food", "medical", "shelter", "power", "transport"];
  const urg = ["low", "normal", "high", "life-threatening"];
  for (let i = 0; i < PINS; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, PINS - i) }, (_, k) => {
      const j = i + k;
      return fetch(node.base + "/api/v1/" + (j % 5 ? "needs" : "offers"), { method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: "Item " + j, category: cats[j % 6], urgency: urg[j % 4],
          lat: s + rnd() * (n - s), lon: w + rnd() * (e - w) }) }).then((r) => { if (!r.ok) throw new Error("post " + r.status); });
    }));
  }

  const browser = await launchBrowser(WEBGL);
  cleanups.push(() => browser.close());
  const rows = [];
  for (const throttle of [1, 4]) {
    const drawn = [], rendered = [], fps = [], bare = [], cold = [], marks = [];
    let weight = null;
    for (let run = 0; run < RUNS; run++) {
      const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Emulation.setCPUThrottlingRate", { rate: throttle });
      const urls = new Map();
      const bytes = new Map();
      cdp.on("Network.requestWillBeSent", (ev) => urls.set(ev.requestId, new URL(ev.request.url).pathname));
      cdp.on("Network.loadingFinished", (ev) => bytes.set(ev.requestId, ev.encodedDataLength));
      // The list page first (what every phone loads), then the map view.
      await page.goto(node.base + "/");
      await page.locator("#needs li[data-id]").first().waitFor();
      await page.click("nav button[data-tab=map]");
      await waitFor("the map drawn", () => page.evaluate(() => {
        const m = window.aidmeshMap;
        return m && m.getLayer("pins") && m.loaded() && !m.isMoving() &&
          /[1-9]/.test(document.querySelector("#map-summary").textContent);
      }), 120000);
      // Until the map is idle with them (a repaint asked for: "idle" comes after the
      // next frame; the map may have gone idle already).
      cold.push(await page.evaluate(() => new Promise((r) => {
        const m = window.aidmeshMap;
        m.once("idle", () => r(Math.round(performance.now() - performance.getEntriesByName("map:open")[0].startTime)));
        m.triggerRepaint();
      })));
      // Where the opening's time goes: the scripts loaded and run, MapLibre's first
      // frame of the style (tiles and glyphs in), the pins drawn.
      marks.push(await page.evaluate(() => {
        const at = (n) => performance.getEntriesByName(n)[0]?.startTime;
        const open = at("map:open");
        return { scripts: at("map:scripts") - open, load: at("map:load") - open, items: at("map:items") - open };
      }));
      if (run === 0) {
        // What the map view added: its script, MapLibre (page and worker), pmtiles, the
        // glyphs, /api/v1/map, as the node sends them gzipped (body bytes, as a phone that
        // takes gzip downloads them); the tiles apart. The paths are those the page asked
        // for (CDP sees the worker's request too).
        const w8 = { map: 0, tiles: 0, files: {} };
        const paths = new Set(urls.values());
        for (const path of paths) {
          const isMap = path === "/map.js" || path.startsWith("/vendor/") || path.startsWith("/glyphs/") || path === "/api/v1/map";
          if (!isMap && path !== "/map/tiles.pmtiles") continue;
          if (path === "/map/tiles.pmtiles") {
            for (const [id, p] of urls) if (p === path) w8.tiles += bytes.get(id) || 0;
            continue;
          }
          const r = await fetch(node.base + path, { headers: { "accept-encoding": "gzip" } });
          const b = Number(r.headers.get("content-length") || (await r.arrayBuffer()).byteLength);
          w8.map += b;
          w8.files[decodeURIComponent(path)] = b;
        }
        weight = w8;
      }
      // 1,000 pins: from asking the node for them (GET /needs and /offers, followed
      // pages) to the map idle with them drawn.
      const d = await page.evaluate(async () => {
        const m = window.aidmeshMap;
        const start = performance.now();
        await loadItems();
        const fetched = performance.now();
        await new Promise((r) => m.once("idle", r));
        return { all: performance.now() - start, render: performance.now() - fetched };
      });
      drawn.push(d.all);
      rendered.push(d.render);
      // A pan across the town for 2 s (MapLibre's own animation), frames counted with
      // requestAnimationFrame.
      const pan = () => page.evaluate(async () => {
        const m = window.aidmeshMap;
        let frames = 0, on = true;
        const tick = () => { frames++; if (on) requestAnimationFrame(tick); };
        requestAnimationFrame(tick);
        const start = performance.now();
        m.panBy([300, 200], { duration: 2000, easing: (x) => x });
        await new Promise((r) => m.once("moveend", r));
        on = false;
        return frames / ((performance.now() - start) / 1000);
      });
      fps.push(await pan());
      // The same pan with the pins hidden: what the basemap alone costs (SwiftShader).
      await page.evaluate(() => {
        for (const l of ["pins", "pin-labels", "clusters", "cluster-count"]) window.aidmeshMap.setLayoutProperty(l, "visibility", "none");
      });
      bare.push(await pan());
      await ctx.close();
    }
    rows.push({ throttle, pins: PINS, runs: RUNS, open_ms: median(cold), scripts_ms: Math.round(median(marks.map((m) => m.scripts))),
      style_ms: Math.round(median(marks.map((m) => m.load))), items_ms: Math.round(median(marks.map((m) => m.items))), draw_ms: Math.round(median(drawn)), render_ms: Math.round(median(rendered)),
      pan_fps: Math.round(median(fps) * 10) / 10, pan_fps_no_pins: Math.round(median(bare) * 10) / 10, weight });
  }
  for (const r of rows) {
    console.log(`CPU ${r.throttle}x: map view open ${r.open_ms} ms (scripts in ${r.scripts_ms} ms, ` +
      `the town drawn at ${r.style_ms} ms, the pins' data in at ${r.items_ms} ms); ${r.pins} pins drawn ${r.draw_ms} ms ` +
      `(of which ${r.render_ms} ms from the data in the page to the map idle); ` +
      `pan ${r.pan_fps} frames/s (${r.pan_fps_no_pins} with the pins hidden) (medians of ${r.runs})`);
  }
  const wgt = rows[0].weight;
  console.log(`page weight the map adds: ${wgt.map} bytes gzipped (tiles ${wgt.tiles} bytes apart)`);
  for (const [p, b] of Object.entries(wgt.files)) console.log(`  ${p} ${b}`);
  console.log(JSON.stringify(rows));
} finally {
  for (const f of cleanups.reverse()) await f();
}
