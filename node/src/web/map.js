// aidmesh web page, the map view (issue 27): the board's needs and offers, the hubs
// and (for PIN holders) the doors of a welfare round on the town's offline map. Loaded
// after app.js, whose functions it uses (t, el, api, itemCard, rosterCard, personCard,
// filterQuery...). MapLibre and pmtiles are loaded only when the map is first shown, from
// the node itself (/vendor/, node/src/web/vendor/README.md): the lists never pay for them.
// The map adds, it does not replace: everything on it is in the lists too.
"use strict";

const MAP = {
  info: null, // GET /api/v1/map's answer, or null when no map is installed
  map: null, // the maplibregl.Map
  loading: null, // the promise of the scripts and the map
  items: new Map(), // full id -> item, positioned and shown on the map
  roster: [],
  people: [],
  dirty: true, // the items need loading again when the map is next shown
  placing: false, // "Pick on the map": the next tap sets the post form's position
  shownCard: null, // { kind: "item" | "hub" | "person", id }
};

// The largest number of needs (and of offers) drawn: the list API's pages, followed.
const MAP_MAX_ITEMS = 5000;

const mapTab = () => document.querySelector('nav button[data-tab="map"]');
const mapShown = () => !$("#tab-map").hidden;

function loadScript(src) {
  return new Promise((ok, fail) => {
    const s = el("script", { src });
    s.addEventListener("load", ok);
    s.addEventListener("error", () => fail(new Error("could not load " + src)));
    document.head.append(s);
  });
}

function loadStyle(href) {
  return new Promise((ok) => {
    const l = el("link", { rel: "stylesheet", href });
    l.addEventListener("load", ok);
    l.addEventListener("error", ok);
    document.head.append(l);
  });
}

// --- The style: the Protomaps basemap schema (earth, water, landuse, roads with `kind`
// and `name`, buildings, places), drawn to read in sunlight (strong contrast, dark text
// with a light halo) and in the dark (the page's dark mode). ---
const PALETTES = {
  light: {
    background: "#e9e6df", earth: "#f5f3ee", park: "#cfe6c4", water: "#7fb3de",
    building: "#d3cec4", buildingLine: "#a8a195",
    casing: "#6b6458", highway: "#f3b13b", major: "#ffd77a", minor: "#ffffff", path: "#8a8378",
    text: "#111111", halo: "#ffffff", placeText: "#000000",
  },
  dark: {
    background: "#101214", earth: "#1b1e21", park: "#20331f", water: "#173a5a",
    building: "#30343a", buildingLine: "#454a52",
    casing: "#000000", highway: "#9c7424", major: "#7b6a3f", minor: "#5b6068", path: "#5b6068",
    text: "#f2f2f2", halo: "#000000", placeText: "#ffffff",
  },
};

const FONT = ["Noto Sans Regular"];

function mapStyle(scheme) {
  const c = PALETTES[scheme];
  const road = (kind) => ["==", ["get", "kind"], kind];
  const minorKinds = ["in", ["get", "kind"], ["literal", ["minor_road", "other"]]];
  // A road's width by zoom; `add` for the casing drawn under it.
  const width = (base, add = 0) => ["interpolate", ["exponential", 1.6], ["zoom"],
    12, base * 0.5 + add, 15, base * 2 + add, 18, base * 8 + add];
  return {
    version: 8,
    glyphs: location.origin + "/glyphs/{fontstack}/{range}.pbf",
    sources: {
      town: { type: "vector", url: "pmtiles://" + new URL(MAP.info.url, location.origin).href },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": c.background } },
      { id: "earth", type: "fill", source: "town", "source-layer": "earth", paint: { "fill-color": c.earth } },
      { id: "park", type: "fill", source: "town", "source-layer": "landuse",
        filter: ["in", ["get", "kind"], ["literal", ["park", "grass", "garden", "forest", "wood", "cemetery", "pitch"]]],
        paint: { "fill-color": c.park } },
      { id: "water", type: "fill", source: "town", "source-layer": "water", paint: { "fill-color": c.water } },
      { id: "buildings", type: "fill", source: "town", "source-layer": "buildings", minzoom: 14,
        paint: { "fill-color": c.building, "fill-outline-color": c.buildingLine } },
      { id: "paths", type: "line", source: "town", "source-layer": "roads", filter: road("path"), minzoom: 14,
        paint: { "line-color": c.path, "line-width": width(0.6), "line-dasharray": [2, 1] } },
      { id: "roads-casing", type: "line", source: "town", "source-layer": "roads",
        filter: ["!=", ["get", "kind"], "path"], layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": c.casing, "line-width": width(1.2, 1.5) } },
      { id: "roads-minor", type: "line", source: "town", "source-layer": "roads", filter: minorKinds,
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": c.minor, "line-width": width(1.2) } },
      { id: "roads-major", type: "line", source: "town", "source-layer": "roads", filter: road("major_road"),
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": c.major, "line-width": width(1.2) } },
      { id: "roads-highway", type: "line", source: "town", "source-layer": "roads", filter: road("highway"),
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": c.highway, "line-width": width(1.2) } },
      { id: "road-names", type: "symbol", source: "town", "source-layer": "roads", minzoom: 13,
        filter: ["has", "name"],
        layout: { "symbol-placement": "line", "text-field": ["get", "name"], "text-font": FONT,
          "text-size": ["interpolate", ["linear"], ["zoom"], 13, 11, 17, 15], "text-max-angle": 30 },
        paint: { "text-color": c.text, "text-halo-color": c.halo, "text-halo-width": 2 } },
      { id: "places", type: "symbol", source: "town", "source-layer": "places", filter: ["has", "name"],
        layout: { "text-field": ["get", "name"], "text-font": FONT,
          "text-size": ["interpolate", ["linear"], ["zoom"], 10, 12, 16, 18] },
        paint: { "text-color": c.placeText, "text-halo-color": c.halo, "text-halo-width": 2.5 } },
    ],
  };
}

// --- Pins: needs (filled) and offers (rings), coloured by urgency, with the category
// named beside them when zoomed in; clustered when many. Hubs (squares of colour by
// whether they are connected now) and, for PIN holders, the doors of the round. ---
const URGENCY_COLOURS = { "life-threatening": "#b71c1c", high: "#d35400", normal: "#1565c0", low: "#546e7a" };
const HUB_COLOURS = { me: "#2e7d32", connected: "#2e7d32", silent: "#b71c1c", away: "#757575" };
const STANDING_COLOURS = { "needs-help": "#b71c1c", "no-answer": "#b71c1c", overdue: "#d35400", "never-visited": "#546e7a", ok: "#2e7d32" };

function hasPosition(x) {
  return x && x.place && typeof x.place.lat === "number" && typeof x.place.lon === "number";
}

function point(x, props) {
  return { type: "Feature", geometry: { type: "Point", coordinates: [x.place.lon, x.place.lat] }, properties: props };
}

function itemFeatures() {
  const out = [];
  for (const i of MAP.items.values()) {
    out.push(point(i, { id: i.id, kind: i.kind, urgency: i.urgency, label: tn("cat", i.category) }));
  }
  return { type: "FeatureCollection", features: out };
}

function hubState(h) {
  return h.me ? "me" : h.reachable ? "connected" : h.silent ? "silent" : "away";
}

function hubFeatures() {
  return { type: "FeatureCollection", features: MAP.roster.filter(hasPosition).map((h) =>
    point(h, { node: h.node, state: hubState(h), name: h.name || h.node })) };
}

function doorFeatures() {
  return { type: "FeatureCollection", features: MAP.people.filter(hasPosition).map((p) =>
    point(p, { id: p.id, standing: p.standing })) };
}

function colourBy(prop, colours, fallback) {
  const m = ["match", ["get", prop]];
  for (const [k, v] of Object.entries(colours)) m.push(k, v);
  m.push(fallback);
  return m;
}

function addPins(map) {
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const ring = dark ? "#000000" : "#ffffff";
  map.addSource("items", { type: "geojson", data: itemFeatures(), cluster: true, clusterRadius: 40, clusterMaxZoom: 16 });
  map.addSource("hubs", { type: "geojson", data: hubFeatures() });
  map.addSource("doors", { type: "geojson", data: doorFeatures() });
  map.addLayer({ id: "doors", type: "circle", source: "doors",
    paint: { "circle-radius": 7, "circle-color": colourBy("standing", STANDING_COLOURS, "#546e7a"),
      "circle-stroke-width": 3, "circle-stroke-color": "#6a1b9a" } });
  map.addLayer({ id: "hubs", type: "circle", source: "hubs",
    paint: { "circle-radius": 11, "circle-color": colourBy("state", HUB_COLOURS, "#757575"),
      "circle-stroke-width": 4, "circle-stroke-color": ring } });
  map.addLayer({ id: "hub-names", type: "symbol", source: "hubs",
    layout: { "text-field": ["get", "name"], "text-font": FONT, "text-size": 13, "text-offset": [0, 1.4],
      "text-anchor": "top", "text-optional": true },
    paint: { "text-color": dark ? "#fff" : "#000", "text-halo-color": ring, "text-halo-width": 2 } });
  map.addLayer({ id: "clusters", type: "circle", source: "items", filter: ["has", "point_count"],
    paint: { "circle-color": "#0b3d5c", "circle-stroke-width": 3, "circle-stroke-color": ring,
      "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 100, 24] } });
  map.addLayer({ id: "cluster-count", type: "symbol", source: "items", filter: ["has", "point_count"],
    layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": FONT, "text-size": 13,
      "text-allow-overlap": true },
    paint: { "text-color": "#ffffff" } });
  const urgent = ["==", ["get", "urgency"], "life-threatening"];
  map.addLayer({ id: "pins", type: "circle", source: "items", filter: ["!", ["has", "point_count"]],
    paint: {
      "circle-radius": ["case", urgent, 11, 8],
      // A need is filled with its urgency's colour; an offer is a ring of it.
      "circle-color": ["case", ["==", ["get", "kind"], "offer"], ring, colourBy("urgency", URGENCY_COLOURS, "#1565c0")],
      "circle-stroke-width": ["case", ["==", ["get", "kind"], "offer"], 4, 2.5],
      "circle-stroke-color": ["case", ["==", ["get", "kind"], "offer"], colourBy("urgency", URGENCY_COLOURS, "#1565c0"), ring],
    } });
  map.addLayer({ id: "pin-labels", type: "symbol", source: "items", filter: ["!", ["has", "point_count"]], minzoom: 15,
    layout: { "text-field": ["get", "label"], "text-font": FONT, "text-size": 12, "text-offset": [0, 1.2],
      "text-anchor": "top", "text-optional": true },
    paint: { "text-color": dark ? "#fff" : "#000", "text-halo-color": ring, "text-halo-width": 2 } });
}

function setData(source, data) {
  const s = MAP.map && MAP.map.getSource(source);
  if (s) s.setData(data);
}

function drawItems() {
  setData("items", itemFeatures());
  mapSummary();
}

// What the map shows, in words (for everyone, and the screen reader's way to it).
function mapSummary() {
  const box = $("#map-summary");
  if (!box || !MAP.info) return;
  let needs = 0, offers = 0;
  for (const i of MAP.items.values()) { if (i.kind === "need") needs++; else offers++; }
  box.textContent = t("map.summary", { needs: num(needs), offers: num(offers) });
}

// --- The board's items with a position, as the lists' filters choose them. ---
async function loadItems() {
  const items = new Map();
  for (const kind of ["needs", "offers"]) {
    let cursor = null, n = 0;
    do {
      const page = await api(boardPath(kind, MAX_PAGE, cursor));
      for (const i of page.items) if (hasPosition(i)) items.set(i.id, i);
      n += page.items.length;
      cursor = page.next_cursor;
    } while (cursor && n < MAP_MAX_ITEMS);
  }
  MAP.items = items;
  MAP.dirty = false;
  drawItems();
  if (MAP.shownCard && MAP.shownCard.kind === "item") {
    const i = MAP.items.get(MAP.shownCard.id);
    if (i) showCard("item", i);
  }
}

// The doors of the welfare round: only for whom the node shows the people to (the hub
// computer itself, or a browser that gave the volunteer PIN: GET /people checks). The
// open board never carries them; a phone without the PIN does not even ask.
const HUB_COMPUTER = ["127.0.0.1", "localhost", "[::1]"].includes(location.hostname);
async function loadPeople() {
  if (!sessionStorage.getItem("pin") && !HUB_COMPUTER) { MAP.people = []; return; }
  const r = await fetch("/api/v1/people", { headers: pinHeaders() }).catch(() => null);
  const body = r && r.ok ? await r.json().catch(() => ({})) : {};
  mapPeople(body.people || []);
}

// The people as the People tab (app.js) or loadPeople last had them: after a check-in,
// the door's colour and its open card follow.
function mapPeople(people) {
  MAP.people = people;
  setData("doors", doorFeatures());
  if (MAP.shownCard && MAP.shownCard.kind === "person") {
    const p = people.find((x) => x.id === MAP.shownCard.id);
    if (p) showCard("person", p);
  }
}

// Called by app.js with each board it loads (the roster, and a hint that items changed).
function mapBoard(b) {
  MAP.roster = (b && b.roster) || [];
  setData("hubs", hubFeatures());
  // (A new language loads the board again: the canvas's label follows.)
  if (MAP.map) MAP.map.getCanvas().setAttribute("aria-label", t("map.canvas_label"));
  MAP.dirty = true;
  if (MAP.map && mapShown()) soon(() => loadItems().catch(() => {}));
}

// Called by app.js with each item the stream (or this page's own change) brings.
function mapItem(i) {
  if (!i || !i.id || (i.kind !== "need" && i.kind !== "offer")) return;
  if (hasPosition(i) && ACTIVE.includes(i.status) && ![...filterQuery().keys()].length) MAP.items.set(i.id, i);
  else if ([...filterQuery().keys()].length) { MAP.dirty = true; }
  else MAP.items.delete(i.id);
  if (MAP.map) drawItems();
  if (MAP.shownCard && MAP.shownCard.kind === "item" && MAP.shownCard.id === i.id) showCard("item", i);
}

// --- A pin's card, under the map, with its actions (app.js draws it as in the lists). ---
function showCard(kind, x, focus) {
  const list = $("#map-card");
  let card;
  if (kind === "item") card = itemCard(x);
  else if (kind === "hub") card = rosterCard(x);
  else card = personCard(x);
  MAP.shownCard = { kind, id: kind === "hub" ? x.node : x.id };
  keepFocus(() => list.replaceChildren(card));
  if (focus) { card.tabIndex = -1; card.focus(); }
}

function onPinClick(e) {
  const map = MAP.map;
  const f = map.queryRenderedFeatures(e.point, { layers: ["clusters", "pins", "hubs", "doors"] })[0];
  if (!f) return false;
  if (f.layer.id === "clusters") {
    map.getSource("items").getClusterExpansionZoom(f.properties.cluster_id)
      .then((zoom) => map.easeTo({ center: f.geometry.coordinates, zoom }))
      .catch(() => {});
  } else if (f.layer.id === "pins") {
    const i = MAP.items.get(f.properties.id);
    if (i) showCard("item", i, true);
  } else if (f.layer.id === "hubs") {
    const h = MAP.roster.find((r) => r.node === f.properties.node);
    if (h) showCard("hub", h, true);
  } else {
    const p = MAP.people.find((r) => r.id === f.properties.id);
    if (p) showCard("person", p, true);
  }
  return true;
}

// --- Placing: "Use my location" and "Pick on the map" fill the post form's position. ---
function setPosition(lat, lon, said) {
  const form = $("#post-form");
  form.elements.namedItem("lat").value = lat.toFixed(6);
  form.elements.namedItem("lon").value = lon.toFixed(6);
  form.dispatchEvent(new Event("change"));
  const out = $("#post-where");
  out.className = "";
  out.textContent = said;
}

function useMyLocation() {
  const out = $("#post-where");
  out.className = "";
  if (!navigator.geolocation || !window.isSecureContext) {
    out.className = "err";
    out.textContent = t("map.no_geolocation");
    return;
  }
  out.textContent = t("map.locating");
  navigator.geolocation.getCurrentPosition(
    (pos) => setPosition(pos.coords.latitude, pos.coords.longitude,
      t("map.located", { metres: num(Math.round(pos.coords.accuracy || 0)) })),
    (err) => { out.className = "err"; out.textContent = t("map.location_failed", { error: err.message }); },
    { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
}

function pickOnMap() {
  MAP.placing = true;
  mapTab().click();
  const hint = $("#map-placing");
  hint.hidden = false;
  hint.textContent = t("map.placing");
  hint.tabIndex = -1;
  hint.focus();
}

function endPlacing(placed) {
  MAP.placing = false;
  $("#map-placing").hidden = true;
  document.querySelector('nav button[data-tab="post"]').click();
  const lat = $("#post-form").elements.namedItem("lat");
  if (placed) lat.focus();
}

// --- The map itself. ---
async function openMap() {
  performance.mark("map:open");
  const box = $("#map-box");
  const none = $("#map-none");
  let problem = "";
  if (!MAP.info) {
    const r = await fetch("/api/v1/map").catch(() => null);
    const body = r ? await r.json().catch(() => null) : null;
    MAP.info = r && r.ok ? body : null;
    // Installed but unreadable (503 map_unreadable), or the hub unreachable: say what.
    if (!r) problem = t("meta.unreachable", { error: "/api/v1/map" });
    else if (!r.ok && r.status !== 404) problem = (body && body.detail) || ("error " + r.status);
  }
  $("#map-problem").textContent = problem;
  if (!MAP.info) {
    none.hidden = false;
    box.hidden = true;
    return;
  }
  none.hidden = true;
  box.hidden = false;
  if (!MAP.loading) MAP.loading = startMap();
  await MAP.loading;
  MAP.map.resize();
  if (MAP.dirty) await loadItems().catch((e) => { $("#map-summary").textContent = e.message; });
  performance.mark("map:items");
  loadPeople().catch(() => {});
}

// The attribution the map file carries (often HTML: a link), as plain text; tippecanoe
// and Protomaps builds of OpenStreetMap data must credit it, so that is the default.
function attributionText(a) {
  const text = a ? new DOMParser().parseFromString(String(a), "text/html").body.textContent.trim() : "";
  return text || "© OpenStreetMap contributors";
}

async function startMap() {
  await Promise.all([loadScript("/vendor/maplibre-gl-csp.js"), loadScript("/vendor/pmtiles.js"),
    loadStyle("/vendor/maplibre-gl.css")]);
  performance.mark("map:scripts"); // (the benchmark reads these marks: bench_map.mjs)
  /* global maplibregl, pmtiles */
  maplibregl.setWorkerUrl("/vendor/maplibre-gl-csp-worker.js");
  // The town's tiles: one PMTiles file, read with HTTP range requests from the node.
  const protocol = new pmtiles.Protocol();
  maplibregl.addProtocol("pmtiles", protocol.tile);
  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const info = MAP.info;
  const [w, s, e, n] = info.bounds;
  const map = new maplibregl.Map({
    container: "map",
    style: mapStyle(scheme.matches ? "dark" : "light"),
    // The whole town at first (a coordinator's overview); the phone zooms in.
    bounds: [[w, s], [e, n]],
    fitBoundsOptions: { padding: 10 },
    minZoom: info.min_zoom ?? 0,
    // Past the tiles' own zoom the last tiles are drawn larger (overzoom): streets stay.
    maxZoom: Math.min((info.max_zoom ?? 16) + 3, 22),
    maxBounds: [[w - (e - w), s - (n - s)], [e + (e - w), n + (n - s)]],
    // The map file's attribution is shown as text under the map (#map-attribution), not
    // by MapLibre's control, which would put the file's HTML into the page.
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
  });
  MAP.map = map;
  $("#map-attribution").textContent = t("map.attribution", { source: attributionText(info.attribution) });
  window.aidmeshMap = map; // for the browser tests and benchmarks
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.getCanvas().setAttribute("aria-label", t("map.canvas_label"));
  await new Promise((ok) => map.once("load", ok));
  performance.mark("map:load");
  addPins(map);
  scheme.addEventListener("change", () => {
    // The basemap's colours change with the page's; the pins are added again.
    map.setStyle(mapStyle(scheme.matches ? "dark" : "light"));
    map.once("style.load", () => { addPins(map); });
  });
  map.on("click", (e) => {
    if (MAP.placing) {
      setPosition(e.lngLat.lat, e.lngLat.lng, t("map.placed"));
      endPlacing(true);
      return;
    }
    onPinClick(e);
  });
  for (const layer of ["clusters", "pins", "hubs", "doors"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
}

function setupMap() {
  mapTab().addEventListener("click", () => {
    if (!MAP.placing) $("#map-placing").hidden = true;
    openMap().catch((e) => { $("#map-none").hidden = false; $("#map-none").textContent = e.message; });
  });
  $("#map-placing").addEventListener("keydown", (ev) => { if (ev.key === "Escape") endPlacing(false); });
  $("#use-location").addEventListener("click", useMyLocation);
  $("#pick-on-map").addEventListener("click", pickOnMap);
  if (location.pathname === "/map") mapTab().click();
}
setupMap();
