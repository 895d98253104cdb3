// aidmesh web page: reads the node's JSON API, posts through it, refreshes on the
// server-sent events stream. Text from the mesh is only ever set with textContent.
"use strict";

// Every request the page makes by itself, in one place (issue 17: a hub full of phones).
// The load harness (tests/src/phones.rs) reads this object, between the BEGIN and END
// lines, as JSON and makes the same requests on the same timers; a test records this
// page's requests in Chromium and compares them with the harness's. Keep it JSON.
// PAGE-REQUESTS-BEGIN
const REQUESTS = {
  "assets": ["/", "/app.js", "/style.css", "/i18n/en.json"],
  "board": "/api/v1/board",
  "limit": 30,
  "stream": "/api/v1/stream",
  "refresh_ms": 30000,
  "refresh_first_random": true,
  "stream_retry_ms": 60000
};
// PAGE-REQUESTS-END

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// --- Languages (issue 13): every string the page shows comes from a catalogue,
// /i18n/<lang>.json (node/src/web/i18n/), chosen from the browser's languages or the
// switch, remembered in localStorage. What people typed is shown as typed. ---

// The languages the node serves, as the switch in index.html lists them.
const LANGS = [...document.querySelectorAll("#lang option")].map((o) => o.value);
let lang = "en";
let catalogue = {};

// The catalogue's text for `key`, with {name} placeholders filled from `vars`.
function t(key, vars) {
  const text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
  return text.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
}

// A name from the node (a category, urgency, status...) in the chosen language; one
// the catalogue does not know is shown as the node sent it.
function tn(group, name) {
  const key = group + "." + name;
  return Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : name;
}

// An item's title; a need a welfare check raised (welfare_help, docs/api.md) has a
// fixed title, worded here in the chosen language from its kind of help.
function titleOf(i) {
  if (!i.welfare_help) return i.title;
  return i.welfare_help === "welfare" ? t("followup.general")
    : t("followup.kind", { kind: tn("cat", i.welfare_help) });
}

// The language asked for: remembered choice, else the browser's first we have.
function chooseLang() {
  const saved = localStorage.getItem("lang");
  if (LANGS.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

// Loads a catalogue and relabels the page's fixed text (data-i18n attributes).
async function setLang(l) {
  const r = await fetch("/i18n/" + l + ".json");
  if (!r.ok) throw new Error("no catalogue for " + l);
  catalogue = await r.json();
  lang = l;
  document.documentElement.lang = l;
  document.documentElement.dir = catalogue._dir === "rtl" ? "rtl" : "ltr";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const a of ["placeholder", "aria-label"]) {
    for (const e of document.querySelectorAll("[data-i18n-" + a + "]")) {
      e.setAttribute(a, t(e.getAttribute("data-i18n-" + a)));
    }
  }
  $("#lang").value = l;
  $("#print-board").href = "/print?lang=" + l;
  $("#print-round").href = "/print/round?lang=" + l;
}

function num(n) {
  return new Intl.NumberFormat(lang).format(n);
}

// "2 hours ago", "hace 2 horas": the browser's own words for the chosen language.
function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  if (s < 45) return rtf.format(0, "second");
  if (s < 3600) return rtf.format(-Math.round(s / 60), "minute");
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), "hour");
  return rtf.format(-Math.floor(s / 86400), "day");
}

// The volunteer PIN, kept for this browser tab only.
function pinHeaders() {
  const pin = sessionStorage.getItem("pin");
  return pin ? { "x-volunteer-pin": pin } : {};
}

async function api(path, opts) {
  opts = opts || {};
  opts.headers = Object.assign({}, opts.headers || {}, path.startsWith("/people") ? pinHeaders() : {});
  const r = await fetch("/api/v1" + path, opts);
  if (r.status === 304) return null; // the conditional request's answer: nothing changed
  const body = await r.json().catch(() => ({}));
  // Posting too fast (a phone's minute of posts, or the hub's day): say what to do,
  // in the page's language (the node's detail is English).
  if (r.status === 429 && (body.error === "too_many_posts" || body.error === "hub_daily_share")) {
    throw new Error(t("err." + body.error, { s: r.headers.get("retry-after") || "60" }));
  }
  if (!r.ok) throw new Error(body.detail || ("error " + r.status));
  if (opts.etag) opts.etag.value = r.headers.get("etag");
  return body;
}

// --- Who holds what (issue 15): the volunteer's name, status actions, history, undo. ---

// The volunteer's name or handle, typed once per phone session (kept for this tab).
function volunteerName() {
  return (sessionStorage.getItem("volunteer-name") || "").trim();
}

// "Your name" box above the boards; claims and other changes carry it as `by`.
function setupWho() {
  const input = el("input", { id: "who", name: "who", maxlength: "80", autocomplete: "name",
    "data-i18n-placeholder": "who.name_placeholder", placeholder: t("who.name_placeholder") });
  input.value = volunteerName();
  input.addEventListener("change", () => sessionStorage.setItem("volunteer-name", input.value.trim()));
  const note = el("input", { id: "who-note", name: "who-note", maxlength: "500",
    "data-i18n-placeholder": "who.note_placeholder", placeholder: t("who.note_placeholder") });
  const box = el("p", { id: "who-box" },
    el("label", {}, el("span", { "data-i18n": "who.name" }, t("who.name")), " ", input),
    " ", el("label", {}, el("span", { "data-i18n": "who.note" }, t("who.note")), " ", note));
  const undo = el("p", { id: "undo", role: "status", hidden: "" });
  document.querySelector("main").before(box, undo);
}

function hhmm(ms) {
  return new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
}

// Posts a status change; shows the node's reason if it was not applied. Returns whether
// it was applied.
async function setStatus(id, status, note) {
  let ok = false;
  try {
    const by = volunteerName();
    const typed = $("#who-note");
    note = note || (typed ? typed.value.trim() : "");
    const item = await api("/items/" + id + "/status", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status, by: by || undefined, note: note || undefined }),
    });
    if (typed) typed.value = "";
    applyItem(item);
    ok = true;
  } catch (e) {
    // Not applied (someone else holds it, say): the node's reason, and the card as the
    // stream or the next refresh has it.
    showUndo(e.message, null);
    redraw(id);
  }
  return ok;
}

// After a change, a bar that can undo it (reopen), since done items leave the board.
function showUndo(text, undo) {
  const bar = $("#undo");
  if (!bar) return;
  bar.replaceChildren(text, undo ? button(t("btn.undo"), async () => {
    bar.hidden = true;
    await setStatus(undo, "reopened", "undone");
  }) : null);
  bar.className = undo ? "" : "err";
  bar.hidden = false;
}

async function change(i, status) {
  if (await setStatus(i.short_id, status)) {
    showUndo(t("verb." + status, { title: titleOf(i) }) + " ", status === "reopened" ? null : i.short_id);
  }
}

// "Done" asks first: it takes the item off the board for everyone. The item being
// confirmed survives the live refreshes that redraw the cards.
let confirming = null;

function doneButton(i) {
  return button(t("btn.done"), () => { confirming = i.id; redraw(i.id); });
}

function confirmDone(i) {
  return el("div", { class: "actions confirm" }, el("span", {}, t("confirm.done") + " "),
    button(t("btn.yes_done"), () => { confirming = null; change(i, "fulfilled"); }),
    button(t("btn.not_yet"), () => { confirming = null; redraw(i.id); }));
}

// Who holds it: the name they gave, the hub they claimed at, and since when.
function holderLine(i) {
  if (!i.held_since) return null;
  const who = i.holder_name || (i.holder_hub ? t("holder.someone") : t("holder.node", { id: i.holder }));
  return el("p", { class: "holder", dir: "auto" }, t(i.holder_hub ? "holder.line_at" : "holder.line",
    { who, hub: i.holder_hub, time: hhmm(i.held_since) }));
}

function historyList(i) {
  if (!i.history || !i.history.length) return null;
  return el("details", { class: "history" },
    el("summary", {}, t("history.summary", { n: num(i.history.length) })),
    el("ol", {}, ...i.history.map((h) => el("li", { dir: "auto" },
      t("history.entry", { status: tn("status", h.status),
        who: h.by ? h.by + " (" + (h.hub || h.author) + ")" : (h.hub || h.author), time: hhmm(h.at) }) +
      (h.applied ? "" : " " + t("history.not_applied")) + (h.note ? ": " + h.note : "")))));
}

function itemCard(i) {
  const qty = i.qty ? num(i.qty) + (i.unit ? " " + i.unit : "") : null;
  const actions = el("div", { class: "actions" });
  if (i.status === "open") actions.append(button(t("btn.claim"), () => change(i, "claimed")));
  if (["open", "claimed"].includes(i.status)) actions.append(button(t("btn.start"), () => change(i, "in-progress")));
  if (["open", "claimed", "in-progress"].includes(i.status)) actions.append(doneButton(i));
  if (["claimed", "in-progress", "fulfilled"].includes(i.status)) actions.append(button(t("btn.reopen"), () => change(i, "reopened")));
  // Only the poster can withdraw; posts made through this hub are this node's.
  if (["open", "claimed", "in-progress"].includes(i.status) && i.author === myAuthor) {
    actions.append(button(t("btn.withdraw"), () => change(i, "withdrawn")));
  }
  cards.set(i.id, i);
  return el("li", { "data-id": i.id, class: unreachedIds.has(i.id) ? "unreached" : "" },
    el("span", { class: "badge u-" + i.urgency }, tn("urgency", i.urgency)),
    el("span", { class: "badge s-" + i.status }, tn("status", i.status)),
    el("span", { class: "badge" }, tn("cat", i.category)),
    knownBadge(i.known),
    el("h2", { dir: "auto" }, titleOf(i)),
    qty ? el("p", { dir: "auto" }, t("card.qty", { qty })) : null,
    i.place && i.place.label ? el("p", { dir: "auto" }, t("card.where", { place: i.place.label })) : null,
    i.contact ? el("p", { dir: "auto" }, t("card.contact", { contact: i.contact })) : null,
    i.details ? el("p", { dir: "auto" }, i.details) : null,
    holderLine(i),
    // An event stamped before this program was built (a Pi without a clock) is shown
    // with when it arrived here, not with its 1970 stamp.
    el("p", { dir: "auto" }, (i.arrived_at ? t("card.arrived", { ago: ago(i.arrived_at) })
      : ago(i.created_at)) + " · " + (i.author_hub || i.short_id)),
    historyList(i),
    confirming === i.id ? confirmDone(i) : actions);
}

// --- Honest delivery (issue 11): at how many of the community's hubs an item is known,
// the roster of hubs, and this hub's urgent needs that no other hub holds yet. ---

// "3/4" on a card: hubs that confirmed holding it (this one included), of all heard of.
// Alone (only here, with other hubs about) it is marked, so it is seen.
function knownBadge(k) {
  if (!k || typeof k.at !== "number" || typeof k.of !== "number") return null;
  return el("span", { class: "badge known" + (k.at < 2 && k.of > 1 ? " alone" : ""),
    title: t("known.title", { at: num(k.at), of: num(k.of) }) }, num(k.at) + "/" + num(k.of));
}

// The stream's `known` event: new counts for some items, redrawn in place on the cards.
function applyKnown(counts) {
  let reached = false;
  for (const [id, k] of Object.entries(counts || {})) {
    const i = cards.get(id);
    if (i) i.known = k;
    // A card, or an alert banner.
    const li = document.querySelector('[data-id="' + id + '"]');
    const old = li && li.querySelector(".badge.known");
    const badge = knownBadge(k);
    if (old && badge) old.replaceWith(badge);
    if (unreachedIds.has(id) && k.at > 1) reached = true;
  }
  // A flagged need reached another hub: the flag is the node's to lift.
  if (reached) soon(refresh);
}

// Ids (full) of the urgent needs posted here that no other hub is known to hold.
let unreachedIds = new Set();

// The node names the first few and counts the rest (`total`).
function showUnreached(list, total) {
  list = list || [];
  unreachedIds = new Set(list.map((n) => n.id));
  const more = Math.max(0, (total || 0) - list.length);
  const box = $("#unreached");
  box.hidden = !list.length;
  box.replaceChildren(...list.map((n) => el("p", { dir: "auto" },
    t("unreached.line", { title: n.text, ago: ago(n.since_ms) }))),
    ...(more ? [el("p", {}, t("unreached.more", { n: num(more) }))] : []));
  for (const li of document.querySelectorAll("li[data-id]")) {
    li.classList.toggle("unreached", unreachedIds.has(li.dataset.id));
  }
}

// One hub of the roster: its name (else its node id), where it is, when it was last
// heard from (directly or through another hub), how far behind it was, and whether it
// is connected now; one silent for too long is flagged.
function rosterCard(h) {
  const state = h.me ? "me" : h.reachable ? "connected" : h.silent ? "silent" : "away";
  const heard = h.last_heard_ms != null
    ? t(h.via === "relayed" ? "roster.heard_relayed" : "roster.heard", { ago: ago(h.last_heard_ms) })
    : t("roster.never");
  return el("li", { "data-node": h.node },
    el("span", { class: "badge r-" + state }, t("roster." + state)),
    el("h2", { dir: "auto" }, h.name || t("roster.unnamed", { node: h.node })),
    h.place && h.place.label ? el("p", { dir: "auto" }, h.place.label) : null,
    h.me ? null : el("p", {}, heard),
    !h.me && h.behind != null ? el("p", {}, t("roster.behind", { n: num(h.behind) })) : null);
}

function showRoster(roster) {
  if (!roster) return;
  fill($("#roster"), roster, rosterCard, t("roster.empty"));
}

// Connected hubs by the name they announced (issue 15); unnamed ones are counted only.
function peerNames(peers) {
  const named = (peers || []).map((p) => p.hub).filter(Boolean);
  return named.length ? " (" + named.join(", ") + ")" : "";
}

// This node's author id in the short form items use (set from /status).
let myAuthor = null;

function button(text, onclick) {
  const b = el("button", { type: "button" }, text);
  b.addEventListener("click", onclick);
  return b;
}

function fill(list, items, render, empty) {
  list.replaceChildren(...(items.length ? items.map(render) : [el("li", { class: "empty" }, empty)]));
}

// --- A busy board (issue 15): search, filters, and a page at a time. ---

// Cards fetched at first and per "Show more"; a live refresh re-fetches as many as are
// shown, up to the API's largest page.
const PAGE = 30;
const MAX_PAGE = 500;
const boards = { needs: { shown: PAGE, next: null, total: 0 }, offers: { shown: PAGE, next: null, total: 0 } };

// The cards drawn, by full id (for redrawing one card, and the "Done?" question).
const cards = new Map();

// Answers of an older board load that arrive after a newer one started are dropped
// ("Show more" against a refresh).
let refreshes = 0;

// The filters as the list API's query (empty ones left out).
function filterQuery() {
  const p = new URLSearchParams();
  for (const k of ["q", "category", "urgency", "status", "hub"]) {
    const v = $("#f-" + k).value.trim();
    if (v) p.set(k, v);
  }
  return p;
}

function boardPath(kind, limit, cursor) {
  const p = filterQuery();
  p.set("limit", String(limit));
  if (cursor) p.set("cursor", cursor);
  return "/" + kind + "?" + p;
}

// "Showing n of N" and "Show more" under a list.
function moreLine(kind) {
  const list = $("#" + kind);
  const b = boards[kind];
  const shown = list.querySelectorAll("li[data-id]").length;
  b.shown = Math.max(PAGE, shown);
  if (!shown && !list.querySelector("li.empty")) {
    list.replaceChildren(el("li", { class: "empty" }, t(kind === "needs" ? "empty.needs" : "empty.offers")));
  }
  $("#" + kind + "-more").replaceChildren(b.total ? t("more.showing", { shown: num(shown), total: num(b.total) }) : "",
    b.next ? button(t("btn.show_more"), () => loadMore(kind)) : null);
}

// Draws a page of a board (or appends it), with "Showing n of N" and "Show more".
function showBoard(kind, page, append) {
  const list = $("#" + kind);
  const b = boards[kind];
  if (append) {
    list.append(...page.items.map(itemCard));
  } else {
    const empty = [...filterQuery().keys()].length ? t("empty.filtered")
      : t(kind === "needs" ? "empty.needs" : "empty.offers");
    fill(list, page.items, itemCard, empty);
  }
  b.next = page.next_cursor || null;
  b.total = page.total || 0;
  moreLine(kind);
}

async function loadMore(kind) {
  const b = boards[kind];
  if (!b.next) return;
  // A board load under way would redraw fewer cards: its answer is dropped.
  const seq = ++refreshes;
  try {
    const page = await api(boardPath(kind, PAGE, b.next));
    if (seq === refreshes) showBoard(kind, page, true);
  } catch (e) {
    showUndo(e.message, null);
  }
}

// A new search or filter starts again from the first page.
function setupFilters() {
  let typing = null;
  const again = () => {
    boards.needs.shown = boards.offers.shown = PAGE;
    refresh();
  };
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); again(); });
  $("#f-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(again, 300); });
  for (const k of ["category", "urgency", "status", "hub"]) $("#f-" + k).addEventListener("change", again);
}

// The hub filter offers every announced hub name, keeping the one chosen.
function hubChoices(hubs) {
  const sel = $("#f-hub");
  const names = [...new Set(hubs.map((h) => h.name))].sort();
  if (names.join("\n") === sel.dataset.names) return;
  sel.dataset.names = names.join("\n");
  const chosen = sel.value;
  sel.replaceChildren(el("option", { value: "", "data-i18n": "filters.all_hubs" }, t("filters.all_hubs")), ...names.map((n) => el("option", { value: n }, n)));
  sel.value = names.includes(chosen) ? chosen : "";
}

function showHubs(hubs) {
  // Announced hubs only (a roster entry of a node that announced none has no place).
  hubs = (hubs || []).filter((h) => h.name && h.place);
  hubChoices(hubs);
  fill($("#hubs"), hubs, (h) => el("li", {},
    el("h2", { dir: "auto" }, h.name),
    h.place.label ? el("p", { dir: "auto" }, h.place.label) : null,
    el("p", { dir: "auto" }, h.services.join(" · "))), t("hubs.empty"));
}

let lastStatus = null;
let records = 0;

function showMeta() {
  const st = lastStatus;
  if (!st) return;
  $("#meta").textContent = t("meta.line", { peers: num(st.peers), names: peerNames(st.peer_list),
    records: num(records) });
}

function showStatus(st) {
  lastStatus = st;
  records = st.events;
  $("#community").textContent = "· " + st.community;
  myAuthor = st.author ? st.author.slice(0, 8) : null;
  showMeta();
  $("#clock").hidden = !st.clock.warning;
  $("#clock").textContent = st.clock.warning || "";
  // Nodes of another community that tried to connect (a mistyped passphrase, most often).
  // ... and those this node dialled that answered for another community.
  const refusedBy = st.refused_by || [];
  // ... and hubs heard nearby whose words or name differ from ours (issue 29).
  const mismatch = (st.other_communities || []).filter((o) => o.differs !== "community");
  $("#refused").hidden = !st.refused.length && !refusedBy.length && !mismatch.length;
  $("#refused").textContent = st.refused.map((r) => t("refused.in", { ip: r.ip, n: num(r.attempts) }))
    .concat(refusedBy.map((r) => t("refused.by", { ip: r.ip, n: num(r.attempts) })))
    .concat(mismatch.map((o) => o.says))
    .join(" ");
}

let categoriesShown = false;
function showCategories(list) {
  if (categoriesShown) return;
  categoriesShown = true;
  const opt = (x) => el("option", { value: x.name, "data-i18n": "cat." + x.name }, tn("cat", x.name));
  $("#category").replaceChildren(...list.map(opt));
  $("#f-category").append(...list.map(opt));
  restoreDraft();
  showChip();
}

// The board: one request (GET /board) for status, both lists, hubs, alerts and the
// categories. Loads never overlap: one asked for while another runs starts when it ends.
// Asked again with the same filters, it is a conditional request (If-None-Match): the
// node answers 304 when nothing changed, and nothing is redrawn.
const board = { etag: null, query: null, running: null, again: false };

function refresh() {
  if (board.running) {
    board.again = true;
    return board.running;
  }
  board.running = (async () => {
    do {
      board.again = false;
      await loadBoard();
    } while (board.again);
    board.running = null;
  })();
  return board.running;
}

async function loadBoard() {
  const seq = ++refreshes;
  const p = filterQuery();
  p.set("limit", String(Math.min(Math.max(boards.needs.shown, boards.offers.shown), MAX_PAGE)));
  const query = p.toString();
  const headers = {};
  if (board.etag && board.query === query) headers["if-none-match"] = board.etag;
  const etag = { value: null };
  try {
    const b = await api(REQUESTS.board.slice("/api/v1".length) + "?" + query, { headers, etag, cache: "no-store" });
    if (seq !== refreshes || b === null) return;
    board.etag = etag.value;
    board.query = query;
    showCategories(b.categories);
    // The alerts and needs first: they are the first screen.
    $("#alerts").replaceChildren(...b.alerts.map(alertBanner));
    showStatus(b.status);
    showBoard("needs", b.needs, false);
    showBoard("offers", b.offers, false);
    showHubs(b.hubs);
    showRoster(b.roster);
    showUnreached(b.status.unreached, b.status.unreached_total);
  } catch (e) {
    if (seq === refreshes) $("#meta").textContent = t("meta.unreachable", { error: e.message });
  }
}

// Sort order of the lists, as the node's: most urgent first, then newest, then by id.
const URGENCIES = ["low", "normal", "high", "life-threatening"];
function before(a, b) {
  const ua = URGENCIES.indexOf(a.urgency), ub = URGENCIES.indexOf(b.urgency);
  if (ua !== ub) return ua > ub;
  if (a.created_at !== b.created_at) return a.created_at > b.created_at;
  return a.id > b.id;
}

const ACTIVE = ["open", "claimed", "in-progress"];

// A need or offer as the stream (or the answer to this page's own change) has it: its
// card is redrawn, added in its place, or taken off the list, without fetching the list.
function applyItem(i) {
  if (!i || !i.id) return;
  const kind = i.kind === "need" ? "needs" : i.kind === "offer" ? "offers" : null;
  if (!kind) return;
  // Filters other than the default ("still open") are applied by the node.
  if ([...filterQuery().keys()].length) { refresh(); return; }
  const list = $("#" + kind);
  const b = boards[kind];
  const old = list.querySelector('li[data-id="' + i.id + '"]');
  const show = ACTIVE.includes(i.status);
  if (old) {
    if (show) {
      old.replaceWith(itemCard(i));
    } else {
      old.remove();
      cards.delete(i.id);
      b.total = Math.max(0, b.total - 1);
    }
    moreLine(kind);
    return;
  }
  if (!show) return;
  // Not drawn: a new post, or a change to one beyond the cards shown. Only a new post
  // surely adds one to the total; for anything else the node counts.
  const shown = [...list.querySelectorAll("li[data-id]")];
  const at = shown.find((li) => before(i, cards.get(li.dataset.id)));
  const isNew = !i.history || !i.history.length;
  if (!isNew) { refresh(); return; }
  b.total += 1;
  if (at) at.before(itemCard(i));
  else if (!b.next) list.append(itemCard(i));
  list.querySelector("li.empty")?.remove();
  moreLine(kind);
}

// Redraws one card from what was last drawn (the "Done?" question and its answer).
function redraw(id) {
  const full = [...cards.keys()].find((k) => k === id || k.startsWith(id));
  const li = full && document.querySelector('li[data-id="' + full + '"]');
  if (li) li.replaceWith(itemCard(cards.get(full)));
}

// An alert with its way out: "All clear" (anyone) or "Cancel" (the hub that raised
// it; the API refuses anyone else and the message says so). An all-clear alert stays
// up, marked so, until it expires.
// An official (CAP) alert carries each of its languages: show the reader's (same tag, else
// same primary language, else as sent), as GET /alerts?lang= does on the server.
function inReadersLanguage(a) {
  const texts = a.official && a.official.languages;
  if (!texts || !texts.length) return a;
  const want = (lang || navigator.language || "").toLowerCase();
  const primary = (t) => (t || "").toLowerCase().split("-")[0];
  const t = texts.find((x) => (x.language || "").toLowerCase() === want) ||
    texts.find((x) => primary(x.language) === primary(want)) || texts[0];
  return Object.assign({}, a, { headline: t.headline, details: t.details, area: t.area });
}

function alertBanner(a) {
  a = inReadersLanguage(a);
  const clear = a.state === "all-clear";
  const end = (status, ask) => async () => {
    if (!confirm(ask)) return;
    try {
      await api("/alerts/" + a.short_id + "/status", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ status }),
      });
    } catch (e) {
      alert(e.message);
    }
    refresh();
  };
  return el("div", { class: "alert" + (clear ? " clear" : ""), role: "alert", "data-id": a.id },
    el("span", { dir: "auto" }, clear ? t("alert.all_clear", { headline: a.headline })
      : t("alert.headline", { severity: tn("severity", a.severity).toLocaleUpperCase(lang), headline: a.headline })),
    " ", knownBadge(a.known),
    a.area ? el("small", { dir: "auto" }, a.area) : null,
    clear ? null : el("div", { class: "actions" },
      button(t("alert.btn_clear"), end("all-clear", t("alert.ask_clear", { headline: a.headline }))),
      button(t("alert.btn_cancel"), end("cancelled", t("alert.ask_cancel", { headline: a.headline })))));
}

// The match view costs the hub computer real work, so it is fetched only while shown,
// a page at a time (the API lists the best few offers per need and a cursor).
function matchCard(m) {
  const more = m.offers_total - m.offers.length;
  return el("li", {},
    el("span", { class: "badge u-" + m.need.urgency }, tn("urgency", m.need.urgency)),
    el("h2", { dir: "auto" }, titleOf(m.need)),
    ...(m.offers.length
      ? m.offers.map((o) => el("p", { dir: "auto" }, "← " + (o.distance_m != null
        ? t("match.distance", { title: o.title, m: num(o.distance_m) }) : o.title)))
      : [el("p", {}, t("match.none"))]),
    more > 0 ? el("p", {}, t("match.more", { n: num(more) })) : null);
}

async function refreshMatch(cursor) {
  const list = $("#match");
  try {
    const page = await api("/match" + (cursor ? "?cursor=" + encodeURIComponent(cursor) : ""));
    if (cursor) {
      list.querySelector("li.more")?.remove();
      list.append(...page.matches.map(matchCard));
    } else {
      fill(list, page.matches, matchCard, t("empty.needs"));
    }
    if (page.next_cursor) {
      const shown = list.querySelectorAll("li:not(.more)").length;
      list.append(el("li", { class: "more" },
        button(t("match.show_more", { shown: num(shown), total: num(page.needs_total) }), () => refreshMatch(page.next_cursor))));
    }
  } catch (e) {
    list.replaceChildren(el("li", { class: "empty" }, t("match.error", { error: e.message })));
  }
}

function personCard(p) {
  const last = p.latest
    ? tn("outcome", p.latest.outcome) + (p.latest.detail ? " (" + p.latest.detail + ")" : "") + ", " + ago(p.latest.at)
    : t("person.never");
  const check = (outcome, detail) => async () => {
    const by = $("#checked-by").value.trim();
    try {
      await api("/people/" + p.short_id + "/checkins", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ outcome, detail, by: by || undefined }),
      });
    } catch (e) {
      alert(e.message);
    }
    refreshPeople();
  };
  const help = async () => {
    const what = prompt(t("person.ask_help", { name: p.name }));
    if (what && what.trim()) await check("needs-help", what.trim())();
  };
  const moved = async () => {
    const where = prompt(t("person.ask_where", { name: p.name }));
    if (where && where.trim()) await check("moved", where.trim())();
  };
  return el("li", { "data-id": p.id },
    el("span", { class: "badge w-" + p.standing }, tn("standing", p.standing)),
    el("h2", { dir: "auto" }, p.name),
    el("p", { dir: "auto" }, t("person.where", { place: p.place.label })),
    p.risks.length ? el("p", { dir: "auto" }, t("person.at_risk", { risks: p.risks.join(", ") })) : null,
    el("p", { class: "sharing" }, t(p.share_with_responders ? "person.shared" : "person.not_shared")),
    el("p", { dir: "auto" }, p.latest && p.latest.by ? t("person.last_by", { last, by: p.latest.by })
      : t("person.last", { last })),
    el("div", { class: "actions" },
      button(t("person.safe"), check("safe")), button(t("person.no_answer"), check("no-answer")),
      button(t("person.not_home"), check("not-home")), button(t("person.needs_help"), help),
      button(t("person.moved"), moved)));
}

async function refreshPeople() {
  const form = $("#pin-form");
  try {
    const r = await api("/people");
    form.hidden = true;
    $("#person-form").hidden = false;
    $("#by-label").hidden = false;
    $("#print-round-box").hidden = false;
    fill($("#people"), r.people, personCard, t("people.empty"));
  } catch (e) {
    $("#people").replaceChildren();
    $("#person-form").hidden = true;
    $("#by-label").hidden = true;
    $("#print-round-box").hidden = true;
    form.hidden = false;
    $("#pin-why").textContent = e.message;
  }
}

$("#person-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {
    name: (f.get("name") || "").trim(),
    place: (f.get("place") || "").trim(),
    every: (f.get("every") || "").trim(),
    consent: f.get("consent"),
    risks: (f.get("risks") || "").split(",").map((r) => r.trim()).filter((r) => r),
    share_with_responders: f.get("share") === "on",
  };
  for (const k of ["phone", "note"]) {
    const v = (f.get(k) || "").trim();
    if (v) body[k] = v;
  }
  const out = $("#person-result");
  try {
    await api("/people", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    out.className = "";
    out.textContent = t("person.added");
    ev.target.reset();
    refreshPeople();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});

// The volunteer types their name once per phone; every check-in records it.
$("#checked-by").value = localStorage.getItem("checked-by") || "";
$("#checked-by").addEventListener("change", (ev) => localStorage.setItem("checked-by", ev.target.value.trim()));

$("#pin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("pin", new FormData(ev.target).get("pin"));
  refreshPeople();
});

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("nav button")) o.classList.toggle("on", o === b);
    for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + b.dataset.tab;
    $("#filters").hidden = !["needs", "offers"].includes(b.dataset.tab);
    if (b.dataset.tab === "people") refreshPeople();
    if (b.dataset.tab === "match") refreshMatch();
  });
}

$("#post-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = {};
  for (const k of ["title", "category", "urgency", "unit", "place", "contact", "details"]) {
    const v = (f.get(k) || "").trim();
    if (v) body[k] = v;
  }
  if (f.get("qty")) body.qty = Number(f.get("qty"));
  const out = $("#post-result");
  try {
    const item = await api("/" + f.get("kind"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    out.className = "";
    out.textContent = t("post.posted", { id: item.short_id });
    ev.target.reset();
    localStorage.removeItem(DRAFT);
    showChip();
    applyItem(item);
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});

// --- The desk (issue 13): one short form, the common categories one tap, and what was
// typed kept in this browser until it is posted (a node restart or a reload mid-entry
// loses nothing). ---
const DRAFT = "post-draft";

function saveDraft() {
  const f = new FormData($("#post-form"));
  localStorage.setItem(DRAFT, JSON.stringify(Object.fromEntries(f.entries())));
}

// Puts a saved draft back (once the category list is there to choose from).
function restoreDraft() {
  let d;
  try { d = JSON.parse(localStorage.getItem(DRAFT) || "null"); } catch (e) { d = null; }
  if (!d) return;
  const form = $("#post-form");
  for (const [k, v] of Object.entries(d)) {
    const fields = form.elements.namedItem(k);
    if (!fields) continue;
    if (fields instanceof RadioNodeList) {
      for (const r of fields) r.checked = r.value === v;
    } else {
      fields.value = v;
    }
  }
  showChip();
}

// The chip of the chosen category shows as pressed.
function showChip() {
  for (const b of document.querySelectorAll("#quick-cat button")) {
    b.setAttribute("aria-pressed", String(b.dataset.cat === $("#category").value));
  }
}

$("#post-form").addEventListener("input", saveDraft);
$("#post-form").addEventListener("change", () => { saveDraft(); showChip(); });
for (const b of document.querySelectorAll("#quick-cat button")) {
  b.addEventListener("click", () => { $("#category").value = b.dataset.cat; showChip(); saveDraft(); });
}

// Work that may wait a moment and is done once for a burst of events.
const later = new Map();
function soon(what) {
  if (!later.has(what)) later.set(what, setTimeout(() => { later.delete(what); what(); }, 250));
}

// One stream message: the card, alert list or hub list it carries is drawn as it is;
// the board is loaded again only for what a message cannot carry (an erasure, a hub's
// new name on cards, a message missed).
function onStream(ev) {
  let d;
  try { d = JSON.parse(ev.data); } catch (e) { refresh(); return; }
  if (typeof d.events === "number") { records = d.events; showMeta(); }
  if (d.item) applyItem(d.item);
  else if (d.alerts) $("#alerts").replaceChildren(...d.alerts.map(alertBanner));
  else if (d.hubs) { showHubs(d.hubs); refresh(); }
  else if (d.kind !== "person" && d.kind !== "checkin") refresh();
  if (!$("#tab-people").hidden && ["person", "checkin", "need", "redaction"].includes(d.kind)) soon(refreshPeople);
  if (!$("#tab-match").hidden && ["need", "offer", "status", "redaction"].includes(d.kind)) soon(refreshMatch);
}

// A new language redraws everything drawn from the node's answers.
$("#lang").addEventListener("change", async (ev) => {
  localStorage.setItem("lang", ev.target.value);
  await setLang(ev.target.value);
  board.etag = null;
  await refresh();
  if (!$("#tab-people").hidden) refreshPeople();
  if (!$("#tab-match").hidden) refreshMatch();
});

let streamOpened = false;
function openStream() {
  const stream = new EventSource(REQUESTS.stream);
  stream.addEventListener("open", () => {
    // After a reconnect, events may have been missed while it was down.
    if (streamOpened) refresh();
    streamOpened = true;
  });
  stream.addEventListener("new", onStream);
  stream.addEventListener("lagged", () => refresh());
  // New "3/4" counts; a changed roster (a hub heard of, connected or gone silent) needs
  // the board again (its ETag covers the roster). tests/src/phones.rs does the same.
  stream.addEventListener("known", (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { soon(refresh); return; }
    applyKnown(d.counts);
    if (d.roster) soon(refresh);
  });
  // A dropped stream reconnects by itself; one refused ("this hub is busy": 503) is
  // closed for good by the browser, so it is opened again a minute later.
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED) setTimeout(openStream, REQUESTS.stream_retry_ms);
  });
}
// The catalogue before anything is drawn; then the stream, then the board: an event
// stored meanwhile is then either in the board's answer or drawn from the stream, never
// missed.
async function start() {
  await setLang(chooseLang()).catch(() => setLang("en")).catch(() => {});
  setupWho();
  setupFilters();
  openStream();
  refresh();
}
start();
// The safety refresh, every 30 s from a random first moment: pages opened together (or
// reconnected after the hub computer restarted) do not all ask at once.
setTimeout(() => {
  refresh();
  setInterval(refresh, REQUESTS.refresh_ms);
}, REQUESTS.refresh_first_random ? Math.random() * REQUESTS.refresh_ms : REQUESTS.refresh_ms);

// --- Sneakernet bundles (issue 12): download is a plain link; importing a file needs
// the hub computer or the volunteer PIN (the node says which). ---
async function uploadFile(path, type, file) {
  const headers = Object.assign({ "content-type": type }, pinHeaders());
  const r = await fetch("/api/v1" + path, { method: "POST", headers, body: file });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || ("error " + r.status));
  return body;
}

$("#bundle-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = new FormData(ev.target).get("file");
  const out = $("#bundle-result");
  out.className = "";
  out.textContent = t("usb.importing");
  try {
    const r = await uploadFile("/bundle", "application/octet-stream", file);
    out.textContent = t("usb.result", { new: r.new, known: r.known, refused: r.refused });
    refresh();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});

// Official alerts (CAP files from a weather or civil-protection service), same rules.
$("#cap-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = new FormData(ev.target).get("file");
  const out = $("#cap-result");
  out.className = "";
  try {
    const r = await uploadFile("/alerts/import", "application/xml", file);
    const n = r.posted.length;
    out.textContent = n ? t("cap.posted", { n }) : t("cap.already");
    refresh();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});
