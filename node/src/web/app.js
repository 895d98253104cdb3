// aidmesh web page: reads the node's JSON API, posts through it, refreshes on the
// server-sent events stream. Text from the mesh is only ever set with textContent.
"use strict";

// Every request the page makes by itself, in one place (issue 17: a hub full of phones).
// The load harness (tests/src/phones.rs) reads this object, between the BEGIN and END
// lines, as JSON and makes the same requests on the same timers; a test records this
// page's requests in Chromium and compares them with the harness's. Keep it JSON.
// PAGE-REQUESTS-BEGIN
const REQUESTS = {
  "assets": ["/", "/app.js", "/style.css", "/map.js", "/i18n/en.json"],
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

// Like t, for a count: the catalogue's `key.one`, `key.few`, `key.other`... as the
// language's plural rules choose for `n` (Intl.PluralRules), else `key` itself.
function tp(key, n, vars) {
  const form = key + "." + new Intl.PluralRules(lang).select(n);
  const k = Object.prototype.hasOwnProperty.call(catalogue, form) ? form : key + ".other";
  return t(Object.prototype.hasOwnProperty.call(catalogue, k) ? k : key, vars);
}

// Says `text` once to screen readers (the polite live region #announce).
function announce(text) {
  const box = $("#announce");
  box.textContent = "";
  setTimeout(() => { box.textContent = text; }, 50);
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
  if (!r.ok) throw Object.assign(new Error(body.detail || ("error " + r.status)), { body });
  if (opts.etag) opts.etag.value = r.headers.get("etag");
  return body;
}

// --- Who holds what (issue 15): the volunteer's name, status actions, history, undo. ---

// The volunteer's name or handle: one field (#who, folded in the header), typed once and
// remembered on this phone; claims, changes and welfare check-ins carry it as `by`.
function volunteerName() {
  return (localStorage.getItem("volunteer-name") || localStorage.getItem("checked-by") || "").trim();
}

function showWho() {
  $("#who-shown").textContent = volunteerName() || t("who.none");
}

function setupWho() {
  const input = $("#who");
  input.value = volunteerName();
  input.addEventListener("change", () => { localStorage.setItem("volunteer-name", input.value.trim()); showWho(); });
  showWho();
  const undo = el("p", { id: "undo", role: "status", hidden: "" });
  document.querySelector("main").before(undo);
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
  bar.replaceChildren(text, ...(undo ? [button(t("btn.undo"), async () => {
    bar.hidden = true;
    await setStatus(undo, "reopened", "undone");
  })] : []));
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
  return act("done", t("btn.done"), titleOf(i), () => { confirming = i.id; redraw(i.id); });
}

function confirmDone(i) {
  return el("div", { class: "actions confirm" }, el("span", {}, t("confirm.done") + " "),
    act("yes", t("btn.yes_done"), titleOf(i), () => { confirming = null; change(i, "fulfilled"); }),
    act("done", t("btn.not_yet"), titleOf(i), () => { confirming = null; redraw(i.id); }));
}

// A card's button: its visible word, and the item or person it acts on in its accessible
// name ("Claim: Blankets for the school"); `name` finds it again after a redraw.
function act(name, text, what, onclick) {
  const b = button(text, onclick);
  b.dataset.act = name;
  b.setAttribute("aria-label", text + ": " + what);
  return b;
}

// Keeps keyboard focus where it was across a redraw of cards (or alert banners): on the
// same button of the same card (by data-id and data-act), else on the card itself.
function keepFocus(draw) {
  const a = document.activeElement;
  const li = a && a.closest && a.closest("[data-id]");
  if (!li) return draw();
  const id = li.dataset.id, name = a.dataset ? a.dataset.act : undefined;
  const r = draw();
  if (document.activeElement && document.activeElement !== document.body && li.isConnected) return r;
  const again = document.querySelector('[data-id="' + id + '"]');
  if (again) {
    const b = name && again.querySelector('[data-act="' + name + '"]');
    if (b) {
      b.focus();
      // A text field redrawn while typed in: the caret goes back to the end.
      try { b.setSelectionRange(b.value.length, b.value.length); } catch (e) { /* not a text field */ }
    }
    else { again.tabIndex = -1; again.focus(); }
  }
  return r;
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
  const what = titleOf(i);
  if (i.status === "open") actions.append(act("claim", t("btn.claim"), what, () => change(i, "claimed")));
  if (["open", "claimed"].includes(i.status)) actions.append(act("start", t("btn.start"), what, () => change(i, "in-progress")));
  if (["open", "claimed", "in-progress"].includes(i.status)) actions.append(doneButton(i));
  if (["claimed", "in-progress", "fulfilled"].includes(i.status)) actions.append(act("reopen", t("btn.reopen"), what, () => change(i, "reopened")));
  // Only the poster can withdraw; posts made through this hub are this node's.
  if (["open", "claimed", "in-progress"].includes(i.status) && i.author === myAuthor) {
    actions.append(act("withdraw", t("btn.withdraw"), what, () => change(i, "withdrawn")));
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
      : ago(i.created_at)) + (i.author_hub ? " · " + i.author_hub : "") + " · ",
    el("span", { class: "id" }, t("card.id", { id: i.short_id }))),
    historyList(i),
    confirming === i.id ? confirmDone(i) : actions);
}

// --- Honest delivery (issue 11): at how many of the community's hubs an item is known,
// the roster of hubs, and this hub's urgent needs that no other hub holds yet. ---

// "3/4" on a card: hubs that confirmed holding it (this one included), of all heard of.
// Alone (only here, with other hubs about) it is marked, so it is seen.
function knownBadge(k) {
  if (!k || typeof k.at !== "number" || typeof k.of !== "number") return null;
  return el("span", { class: "badge known" + (k.at < 2 && k.of > 1 ? " alone" : "") },
    tp("known.words", k.of, { at: num(k.at), of: num(k.of) }));
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
  // Redrawn only when it says something new: a live region re-filled every refresh is
  // announced again and again.
  const said = JSON.stringify([lang, list.map((n) => [n.id, n.text]), more]);
  if (box.dataset.said !== said) {
    box.dataset.said = said;
    box.replaceChildren(...list.map((n) => el("p", { dir: "auto" },
      t("unreached.line", { title: n.text, ago: ago(n.since_ms) }))),
      ...(more ? [el("p", {}, tp("unreached.more", more, { n: num(more) }))] : []));
  }
  for (const li of document.querySelectorAll("li[data-id]")) {
    li.classList.toggle("unreached", unreachedIds.has(li.dataset.id));
  }
}

// One hub of the roster: its name (else its node id), where it is, when it was last
// heard from (directly or through another hub), how far behind it was, and whether it
// is connected now; one silent for too long is flagged.
// A hub not heard from for 3 days (issue 29) says so instead of being counted, and the
// hub computer or a PIN holder may retire it (off this hub's list until heard again).
function rosterCard(h) {
  const gone = !h.me && !h.reachable && h.gone === true;
  const state = h.me ? "me" : h.reachable ? "connected" : gone ? "gone" : h.silent ? "silent" : "away";
  const heard = h.last_heard_ms != null
    ? t(h.via === "relayed" ? "roster.heard_relayed" : "roster.heard", { ago: ago(h.last_heard_ms) })
    : t("roster.never");
  const label = h.name || t("roster.unnamed", { node: h.node });
  // Said below the list: the card itself goes once retired.
  const retire = gone ? act("retire", t("roster.retire"), label, async () => {
    const r = await fetch("/api/v1/hubs/" + h.node + "/retire",
      { method: "POST", headers: Object.assign({ "content-type": "application/json" }, pinHeaders()), body: "{}" })
      .catch(() => null);
    const said = $("#roster-result");
    said.className = r && r.ok ? "" : "err";
    said.textContent = !r ? t("pin.unreachable") : r.ok ? t("roster.retired", { hub: label })
      : r.status === 401 || r.status === 403 ? t("roster.retire_pin") : t("pin.error", { error: r.status });
    if (r && r.ok) refresh();
  }) : null;
  return el("li", { "data-node": h.node },
    el("span", { class: "badge r-" + state },
      gone && h.not_seen_days != null ? tp("roster.not_seen", h.not_seen_days, { n: num(h.not_seen_days) }) : t("roster." + state)),
    el("h2", { dir: "auto" }, label),
    h.place && h.place.label ? el("p", { dir: "auto" }, h.place.label) : null,
    h.me ? null : el("p", {}, heard),
    !h.me && h.behind != null ? el("p", {}, tp("roster.behind", h.behind, { n: num(h.behind) })) : null,
    gone ? el("p", {}, t("roster.gone_note")) : null,
    retire ? el("div", { class: "actions" }, retire) : null);
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
  keepFocus(() => list.replaceChildren(...(items.length ? items.map(render) : [el("li", { class: "empty" }, empty)])));
}

// --- A busy board (issue 15): search, filters, and a page at a time. ---

// Cards fetched at first and per "Show more"; a live refresh re-fetches as many as are
// shown, up to the API's largest page.
const PAGE = 30;
const MAX_PAGE = 500;
// `searched`: how far a search of a long list looked; `further`: "Search further" was
// pressed since the search was last changed.
const boards = {
  needs: { shown: PAGE, next: null, total: 0, searched: null, further: false },
  offers: { shown: PAGE, next: null, total: 0, searched: null, further: false },
};

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
  const line = $("#" + kind + "-more");
  const had = line.contains(document.activeElement);
  // A search of a long list looks through a part per answer (`searched`): the line
  // says how far, and the button searches on.
  const s = b.searched;
  const text = s ? t(s.through < s.of ? "more.searched" : "more.searched_all",
    { shown: num(shown), through: num(s.through), of: num(s.of) })
    : b.total ? t("more.showing", { shown: num(shown), total: num(b.total) }) : "";
  line.replaceChildren(text,
    ...(b.next ? [button(t(s ? "btn.search_further" : "btn.show_more"), () => loadMore(kind))] : []));
  // "Show more" pressed: the focus goes on with the button, or to the last card.
  if (had) {
    const next = line.querySelector("button") || [...list.querySelectorAll("li[data-id]")].at(-1);
    if (next && next.tagName !== "BUTTON") next.tabIndex = -1;
    if (next) next.focus();
  }
}

// Draws a page of a board (or appends it), with "Showing n of N" and "Show more".
function showBoard(kind, page, append) {
  const list = $("#" + kind);
  const b = boards[kind];
  if (append) {
    if (page.items.length) list.querySelector("li.empty")?.remove();
    list.append(...page.items.map(itemCard));
  } else {
    const empty = [...filterQuery().keys()].length ? t("empty.filtered")
      : t(kind === "needs" ? "empty.needs" : "empty.offers");
    fill(list, page.items, itemCard, empty);
  }
  b.next = page.next_cursor || null;
  b.total = page.total || 0;
  b.searched = page.searched || null;
  moreLine(kind);
}

async function loadMore(kind) {
  const b = boards[kind];
  if (!b.next) return;
  // A board load under way would redraw fewer cards: its answer is dropped.
  const seq = ++refreshes;
  try {
    const page = await api(boardPath(kind, PAGE, b.next));
    if (seq !== refreshes) return;
    // Searched past the first part: a live refresh (which searches the first part
    // again) leaves this list as it is until the search changes.
    if (page.searched) b.further = true;
    showBoard(kind, page, true);
  } catch (e) {
    showUndo(e.message, null);
  }
}

// A new search or filter starts again from the first page.
function setupFilters() {
  let typing = null;
  const again = () => {
    boards.needs.shown = boards.offers.shown = PAGE;
    boards.needs.further = boards.offers.further = false;
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
  $("#meta").textContent = tp("meta.line", st.peers, { peers: num(st.peers), names: peerNames(st.peer_list),
    records: num(records) });
}

function showStatus(st) {
  lastStatus = st;
  records = st.events;
  $("#community").textContent = "· " + st.community;
  myAuthor = st.author ? st.author.slice(0, 8) : null;
  showMeta();
  $("#clock").hidden = !st.clock.warning;
  $("#clock").textContent = clockWords(st.clock);
  // Nodes of another community that tried to connect (a mistyped passphrase, most often).
  // ... and those this node dialled that answered for another community.
  const refusedBy = st.refused_by || [];
  // ... and hubs heard nearby whose words or name differ from ours (issue 29).
  const mismatch = (st.other_communities || []).filter((o) => o.differs !== "community");
  $("#refused").hidden = !st.refused.length && !refusedBy.length && !mismatch.length;
  $("#refused").textContent = st.refused.map((r) => t("refused.in", { ip: r.ip, n: num(r.attempts) }))
    .concat(refusedBy.map((r) => t("refused.by", { ip: r.ip, n: num(r.attempts) })))
    .concat(mismatch.map((o) => t("mismatch." + o.differs, { ip: o.ip })))
    .join(" ");
}

// The clock warning in the page's language (the node's `code` and `by_ms`; its own
// `warning` is English, kept for a code this page does not know).
function clockWords(c) {
  if (!c.warning) return "";
  if (c.code === "before_build") return t("clock.before_build");
  if ((c.code !== "behind" && c.code !== "ahead") || c.by_ms == null) return c.warning;
  const h = c.by_ms / 3600000;
  const [n, unit] = h >= 48 ? [Math.round(h / 24), "day"] : h >= 2 ? [Math.round(h), "hour"]
    : [Math.max(1, Math.round(c.by_ms / 60000)), "minute"];
  const d = new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(n);
  return t("clock." + c.code, { d }) + (c.corrected === false ? " " + tp("clock.not_corrected", c.hosts || 0, { n: num(c.hosts || 0) }) : "");
}

let categoriesShown = false;
function showCategories(list) {
  if (categoriesShown) return;
  categoriesShown = true;
  const opt = (x) => el("option", { value: x.name, "data-i18n": "cat." + x.name }, tn("cat", x.name));
  // No category is chosen for the poster: one left unchosen is asked for, not posted as water.
  $("#category").replaceChildren(el("option", { value: "", "data-i18n": "post.choose_category" },
    t("post.choose_category")), ...list.map(opt));
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
    showAlerts(b.alerts);
    showStatus(b.status);
    if (!boards.needs.further) showBoard("needs", b.needs, false);
    if (!boards.offers.further) showBoard("offers", b.offers, false);
    showHubs(b.hubs);
    showRoster(b.roster);
    showUnreached(b.status.unreached, b.status.unreached_total);
    if (typeof mapBoard === "function") mapBoard(b); // the map view (map.js)
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
  if (typeof mapItem === "function") mapItem(i); // the map view (map.js)
  const kind = i.kind === "need" ? "needs" : i.kind === "offer" ? "offers" : null;
  if (!kind) return;
  const list = $("#" + kind);
  const b = boards[kind];
  const old = list.querySelector('li[data-id="' + i.id + '"]');
  // A list searched further than the first part: a card shown is redrawn; the rest
  // waits until the search changes (a refresh would search the first part only).
  if (b.further) {
    if (old) keepFocus(() => old.replaceWith(itemCard(i)));
    refresh();
    return;
  }
  // Filters other than the default ("still open") are applied by the node.
  if ([...filterQuery().keys()].length) { refresh(); return; }
  const show = ACTIVE.includes(i.status);
  if (old) {
    if (show) {
      keepFocus(() => old.replaceWith(itemCard(i)));
    } else {
      if (old.contains(document.activeElement)) {
        const next = old.nextElementSibling || old.previousElementSibling;
        if (next) { next.tabIndex = -1; next.focus(); }
      }
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
  announce(t(kind === "needs" ? "announce.need" : "announce.offer", { title: titleOf(i) }));
  if (at) at.before(itemCard(i));
  else if (!b.next) list.append(itemCard(i));
  list.querySelector("li.empty")?.remove();
  moreLine(kind);
}

// Redraws one card from what was last drawn (the "Done?" question and its answer).
function redraw(id) {
  const full = [...cards.keys()].find((k) => k === id || k.startsWith(id));
  const li = full && document.querySelector('li[data-id="' + full + '"]');
  if (li) keepFocus(() => li.replaceWith(itemCard(cards.get(full))));
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

// The banners are role=alert: put in again, each is read out again. Only a change (or a
// new language) redraws them.
function showAlerts(list) {
  const box = $("#alerts");
  const said = JSON.stringify([lang, list]);
  if (box.dataset.said === said) return;
  box.dataset.said = said;
  keepFocus(() => box.replaceChildren(...list.map(alertBanner)));
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
    const by = volunteerName();
    try {
      await api("/people/" + p.short_id + "/checkins", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ outcome, detail, by: by || undefined }),
      });
      helping.delete(p.id);
    } catch (e) {
      const out = document.querySelector('#people li[data-id="' + p.id + '"] .check-result');
      if (out) { out.className = "check-result err"; out.textContent = e.message; }
      return;
    }
    await refreshPeople();
  };
  // "Needs help…" and "Moved…": a small form on the card (a phone's native prompt() is
  // easily lost), kept open, with what was typed, across the redraws of the list until
  // sent or closed.
  const ask = (outcome) => () => {
    const open = helping.get(p.id);
    helping.set(p.id, { outcome, text: open && open.outcome === outcome ? open.text : "" });
    focusHelp = p.id;
    refreshPeople();
  };
  const help = ask("needs-help");
  const moved = ask("moved");
  const helpForm = () => {
    const open = helping.get(p.id);
    const isHelp = open.outcome === "needs-help";
    const input = el("input", { name: isHelp ? "help" : "where", required: "", maxlength: isHelp ? "500" : "120",
      "data-act": "help-text", "aria-describedby": "help-msg-" + p.short_id });
    input.value = open.text;
    input.addEventListener("input", () => { open.text = input.value; });
    const msg = el("small", { class: "field-msg", id: "help-msg-" + p.short_id });
    const form = el("form", { class: "help-form" },
      el("label", {}, el("span", {}, isHelp ? t("person.ask_help", { name: p.name }) : t("person.ask_where", { name: p.name })),
        " ", input), msg,
      el("div", { class: "actions" },
        act("help-send", isHelp ? t("person.help_send") : t("person.moved_send"), p.name, () => {}),
        act("help-cancel", t("btn.cancel"), p.name, () => { helping.delete(p.id); refreshPeople(); })));
    form.querySelector("[data-act=help-send]").type = "submit";
    form.setAttribute("novalidate", "");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const what = input.value.trim();
      if (!what) {
        input.setAttribute("aria-invalid", "true");
        msg.textContent = isHelp ? t("person.help_empty") : t("person.moved_empty");
        input.focus();
        return;
      }
      await check(open.outcome, what)();
    });
    return form;
  };
  return el("li", { "data-id": p.id },
    el("span", { class: "badge w-" + p.standing }, tn("standing", p.standing)),
    el("span", { class: "badge id" }, t("card.id", { id: p.short_id })),
    el("h2", { dir: "auto" }, p.name),
    el("p", { dir: "auto" }, t("person.where", { place: p.place.label })),
    p.risks.length ? el("p", { dir: "auto" }, t("person.at_risk", { risks: p.risks.join(", ") })) : null,
    el("p", { class: "sharing" }, t(p.share_with_responders ? "person.shared" : "person.not_shared")),
    el("p", { dir: "auto" }, p.latest && p.latest.by ? t("person.last_by", { last, by: p.latest.by })
      : t("person.last", { last })),
    el("div", { class: "actions" },
      act("safe", t("person.safe"), p.name, check("safe")), act("no-answer", t("person.no_answer"), p.name, check("no-answer")),
      act("not-home", t("person.not_home"), p.name, check("not-home")), act("needs-help", t("person.needs_help"), p.name, help),
      act("moved", t("person.moved"), p.name, moved)),
    helping.has(p.id) ? helpForm() : null,
    el("p", { class: "check-result", role: "status" }));
}

// People whose "Needs help" or "Moved" form is open (full id → { outcome, text typed }),
// and the one whose form was just opened (its field gets the focus).
const helping = new Map();
let focusHelp = null;

// Why the PIN form shows, in the page's language: asked for the first time, a wrong PIN,
// or too many wrong PINs (the node's own words name a header a phone user never sees).
let pinTried = false;

async function refreshPeople() {
  const form = $("#pin-form");
  const input = form.elements.namedItem("pin");
  const r = await fetch("/api/v1/people", { headers: pinHeaders() }).catch(() => null);
  const body = r ? await r.json().catch(() => ({})) : {};
  if (r && r.ok) {
    const pinHadFocus = form.contains(document.activeElement);
    form.hidden = true;
    input.removeAttribute("aria-invalid");
    $("#person-form").hidden = false;
    $("#print-round-box").hidden = false;
    refreshSms();
    fill($("#people"), body.people, personCard, t("people.empty"));
    if (typeof mapPeople === "function") mapPeople(body.people); // the round's doors (map.js)
    const open = focusHelp && document.querySelector('#people li[data-id="' + focusHelp + '"] [data-act=help-text]');
    focusHelp = null;
    if (open) open.focus();
    // The PIN form is gone: the focus goes to the list it opened, not to the page's top.
    if (pinHadFocus) {
      const li = $("#people li");
      if (li) { li.tabIndex = -1; li.focus(); }
    }
    return;
  }
  $("#people").replaceChildren();
  $("#person-form").hidden = true;
  $("#print-round-box").hidden = true;
  $("#sms-box").hidden = true;
  form.hidden = false;
  let why = "pin.why";
  if (!r) why = "pin.unreachable";
  else if (r.status === 429) why = "pin.locked";
  else if (r.status === 401 && pinTried) why = "pin.wrong";
  else if (r.status !== 401) why = "pin.error";
  $("#pin-why").textContent = t(why, { error: body.detail || (r ? r.status : "") });
  $("#pin-why").className = why === "pin.why" ? "" : "err";
  if (why === "pin.wrong" || why === "pin.locked") {
    sessionStorage.removeItem("pin");
    input.setAttribute("aria-invalid", "true");
    input.value = "";
    input.focus();
  }
}

// The SMS gateway's panel (/sms), for the hub computer and PIN holders, when this node
// runs a gateway (docs/sms.md): a link saying how many texts wait for a person.
async function refreshSms() {
  const r = await fetch("/api/v1/sms/status", { headers: pinHeaders() }).catch(() => null);
  const v = r && r.ok ? await r.json().catch(() => ({})) : {};
  $("#sms-box").hidden = v.gateway !== true;
  if (v.gateway === true) {
    const n = Number(v.review) || 0;
    $("#sms-link").textContent = tp("sms.review", n, { n: num(n) });
  }
}

// The round sheet needs the PIN too, and a link cannot carry it: fetched with the PIN,
// then written into a new tab (the sheet is the node's HTML, escaped there). That tab
// has this page's Content-Security-Policy, which refuses the sheet's inline <style>: its
// rules are given to the tab's document as a constructed stylesheet instead.
$("#print-round").addEventListener("click", async (ev) => {
  ev.preventDefault();
  const out = $("#round-result");
  out.className = "";
  out.textContent = t("round.loading");
  const win = window.open("", "_blank");
  try {
    const r = await fetch($("#print-round").getAttribute("href"), { headers: pinHeaders() });
    if (!r.ok) throw new Error(r.status === 401 ? t("pin.wrong") : t("pin.error", { error: r.status }));
    const html = await r.text();
    if (!win) throw new Error(t("round.blocked"));
    const doc = new DOMParser().parseFromString(html, "text/html");
    const styles = [...doc.querySelectorAll("style")];
    const css = styles.map((e) => e.textContent).join("\n");
    for (const e of styles) e.remove();
    win.document.open();
    win.document.write("<!doctype html>\n" + doc.documentElement.outerHTML);
    win.document.close();
    const sheet = new win.CSSStyleSheet();
    sheet.replaceSync(css);
    win.document.adoptedStyleSheets = [sheet];
    out.textContent = t("round.opened");
  } catch (e) {
    if (win) win.close();
    out.className = "err";
    out.textContent = e.message;
  }
});

// Someone to check on: name, where and how often are asked for on the page, in its
// language, next to each field (the node's own refusals are in English).
for (const k of ["name", "place", "every"]) {
  const input = $("#person-form").elements.namedItem(k);
  fieldMsg(input);
  input.addEventListener("input", () => clearCheck(input));
}

$("#person-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const missing = ["name", "place", "every"].map((k) => ev.target.elements.namedItem(k))
    .filter((input) => { clearCheck(input); return !input.value.trim(); });
  for (const input of missing) {
    input.setAttribute("aria-invalid", "true");
    const msg = fieldMsg(input);
    msg.className = "field-msg err";
    msg.textContent = { name: t("person.need_name"), place: t("person.need_place"),
      every: t("person.need_every") }[input.name];
  }
  if (missing.length) {
    missing[0].focus();
    $("#person-result").className = "err";
    $("#person-result").textContent = t("person.fix");
    return;
  }
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
    out.textContent = atField(ev.target, e) ? t("person.fix") : e.message;
  }
});

$("#pin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("pin", new FormData(ev.target).get("pin"));
  pinTried = true;
  refreshPeople();
});

for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    for (const o of document.querySelectorAll("nav button")) {
      o.classList.toggle("on", o === b);
      if (o === b) o.setAttribute("aria-current", "page"); else o.removeAttribute("aria-current");
    }
    // The name is asked where it is recorded: claims on the boards, welfare check-ins.
    $("#who-box").hidden = !["needs", "offers", "people"].includes(b.dataset.tab);
    for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + b.dataset.tab;
    $("#filters").hidden = !["needs", "offers", "map"].includes(b.dataset.tab);
    if (b.dataset.tab === "people") refreshPeople();
    if (b.dataset.tab === "match") refreshMatch();
  });
}

// The post form is checked here, in the page's language, next to each field (the
// browser's own messages would be in the browser's language): a title that is not only
// spaces, a category chosen, no field longer than the node takes ([data-max]; nothing is
// cut: a counter shows near the limit and the field is flagged past it).
function fieldMsg(input) {
  const id = (input.form && input.form.id === "person-form" ? "err-person-" : "err-") + input.name;
  let msg = document.getElementById(id);
  if (!msg) {
    msg = el("small", { class: "field-msg", id });
    input.after(msg);
    input.setAttribute("aria-describedby", msg.id);
  }
  return msg;
}

function countField(input) {
  const max = Number(input.dataset.max);
  const n = input.value.length;
  const over = n > max;
  const msg = fieldMsg(input);
  msg.className = "field-msg" + (over ? " err" : "");
  msg.textContent = over ? t("post.too_long", { n: num(n), max: num(max) })
    : n >= max * 0.8 ? t("post.count", { n: num(n), max: num(max) }) : "";
  if (over) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  return !over;
}

// A field's "required" message goes once the field is changed.
function clearCheck(input) {
  input.removeAttribute("aria-invalid");
  const msg = fieldMsg(input);
  msg.className = "field-msg";
  msg.textContent = "";
}

function checkPost(form) {
  const bad = [];
  const flag = (input, text) => {
    const msg = fieldMsg(input);
    input.setAttribute("aria-invalid", "true");
    msg.className = "field-msg err";
    msg.textContent = text;
    bad.push(input);
  };
  const category = form.elements.namedItem("category");
  clearCheck(category);
  for (const input of form.querySelectorAll("[data-max]")) {
    if (!countField(input)) bad.push(input);
  }
  const title = form.elements.namedItem("title");
  if (!title.value.trim()) flag(title, t("post.need_title"));
  if (!category.value) flag(category, t("post.need_category"));
  const order = [...form.elements];
  bad.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  if (bad.length) bad[0].focus();
  return !bad.length;
}

for (const input of document.querySelectorAll("#post-form [data-max]")) {
  fieldMsg(input);
  input.addEventListener("input", () => countField(input));
}
fieldMsg($("#category"));
$("#category").addEventListener("change", () => clearCheck($("#category")));

$("#post-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out0 = $("#post-result");
  if (!checkPost(ev.target)) {
    out0.className = "err";
    out0.textContent = t("post.fix");
    return;
  }
  const f = new FormData(ev.target);
  const body = {};
  for (const k of ["title", "category", "urgency", "unit", "place", "contact", "details"]) {
    const v = (f.get(k) || "").trim();
    if (v) body[k] = v;
  }
  if (f.get("qty")) body.qty = Number(f.get("qty"));
  // The position (map.js fills it from the phone's location or a tap on the map).
  // Only one of the two is sent as it is, and the node says both are needed.
  const lat = (f.get("lat") || "").trim(), lon = (f.get("lon") || "").trim();
  if (lat || lon) {
    body.lat = lat ? Number(lat) : null;
    body.lon = lon ? Number(lon) : null;
  }
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
    for (const input of ev.target.querySelectorAll("[data-max]")) countField(input);
    localStorage.removeItem(DRAFT);
    showChip();
    applyItem(item);
  } catch (e) {
    out.className = "err";
    out.textContent = atField(ev.target, e) ? t("post.fix") : e.message;
  }
});

// A refusal the node tied to one field (docs/api.md, "Refusals field by field"): its
// `code` worded from the catalogue at that field (aria-invalid, aria-describedby), which
// gets the focus. False when the form has no such field or the code is not one known.
function atField(form, e) {
  const b = e && e.body;
  if (!b || !b.field || !b.code) return false;
  const input = form.elements.namedItem(b.field);
  const key = "err.code." + b.code;
  if (!input || !input.name || !Object.prototype.hasOwnProperty.call(catalogue, key)) return false;
  const msg = fieldMsg(input);
  input.setAttribute("aria-invalid", "true");
  msg.className = "field-msg err";
  const max = Number(input.dataset.max || input.getAttribute("maxlength")) || null;
  msg.textContent = b.code === "too_long" && max ? t("post.too_long", { n: num(input.value.length), max: num(max) }) : t(key);
  input.focus();
  return true;
}

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
  b.addEventListener("click", () => { $("#category").value = b.dataset.cat; clearCheck($("#category")); showChip(); saveDraft(); });
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
  else if (d.alerts) showAlerts(d.alerts);
  else if (d.hubs) { showHubs(d.hubs); refresh(); }
  else if (d.kind !== "person" && d.kind !== "checkin") refresh();
  if (!$("#tab-people").hidden && ["person", "checkin", "need", "redaction"].includes(d.kind)) soon(refreshPeople);
  if (!$("#tab-match").hidden && ["need", "offer", "status", "redaction"].includes(d.kind)) soon(refreshMatch);
}

// A new language redraws everything drawn from the node's answers.
$("#lang").addEventListener("change", async (ev) => {
  localStorage.setItem("lang", ev.target.value);
  await setLang(ev.target.value);
  showWho();
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
  // The sticky tabs' height, for scroll-padding-top: a control reached by Shift+Tab is
  // scrolled into view below them, not under them.
  const nav = document.querySelector("nav");
  const navH = () => document.documentElement.style.setProperty("--nav-h", (nav.offsetHeight + 8) + "px");
  new ResizeObserver(navH).observe(nav);
  navH();
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
  // The node's refusal in the page's language where the catalogue has its code.
  const key = "err.import." + body.error;
  const known = Object.prototype.hasOwnProperty.call(catalogue, key);
  if (!r.ok) throw new Error(known ? t(key, { detail: body.detail || "" }) : body.detail || ("error " + r.status));
  return body;
}

// What a bundle brought (issue 29), as `bundle import` says it: the new events by kind
// (`came_in`) and by the hub that made them (`from`).
function cameIn(r) {
  const kinds = r.came_in || {};
  if (!Object.keys(kinds).length) return "";
  const shown = ["need", "offer", "person", "checkin", "hub", "alert", "official-alert", "status"];
  const parts = shown.filter((k) => kinds[k]).map((k) => tp("usb.kind." + k, kinds[k], { n: num(kinds[k]) }));
  const other = Object.entries(kinds).filter(([k]) => !shown.includes(k)).reduce((a, [, n]) => a + n, 0);
  if (other) parts.push(tp("usb.kind.other", other, { n: num(other) }));
  const from = (r.from || []).map((f) => t("usb.from_hub", { hub: f.hub || f.author, n: num(f.events) }));
  return t("usb.came_in", { what: parts.join(", ") }) + (from.length ? " " + t("usb.from", { hubs: from.join(", ") }) : "");
}

$("#bundle-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = new FormData(ev.target).get("file");
  const out = $("#bundle-result");
  out.className = "";
  out.textContent = t("usb.importing");
  try {
    const r = await uploadFile("/bundle", "application/octet-stream", file);
    out.textContent = [t("usb.result", { new: r.new, known: r.known, refused: r.refused }),
      cameIn(r)].filter((x) => x).join(" ");
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
    // An Update or a Cancel ends the alerts it references; an old copy posts nothing.
    const n = r.posted.length;
    const ended = (r.ended || []).length;
    const said = [];
    if (n) said.push(tp("cap.posted", n, { n: num(n) }));
    if (ended) said.push(tp("cap.ended", ended, { n: num(ended) }));
    if (!said.length) said.push((r.already_posted || []).length ? t("cap.already") : t("cap.nothing"));
    out.textContent = said.join(" ");
    refresh();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});
