// aidmesh web page: reads the node's JSON API, posts through it, refreshes on the
// server-sent events stream. Text from the mesh is only ever set with textContent.
"use strict";

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

function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 45) return "just now";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " days ago";
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
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || ("error " + r.status));
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
    placeholder: "e.g. Ana" });
  input.value = volunteerName();
  input.addEventListener("change", () => sessionStorage.setItem("volunteer-name", input.value.trim()));
  const note = el("input", { id: "who-note", name: "who-note", maxlength: "500",
    placeholder: "e.g. bringing 2 cases at 3pm" });
  const box = el("p", { id: "who-box" }, el("label", {}, "Your name (shown when you claim) ", input),
    " ", el("label", {}, "Note with your next change (optional) ", note));
  const undo = el("p", { id: "undo", role: "status", hidden: "" });
  document.querySelector("main").before(box, undo);
}

function hhmm(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Posts a status change; shows the node's reason if it was not applied. Returns whether
// it was applied.
async function setStatus(id, status, note) {
  let ok = false;
  try {
    const by = volunteerName();
    const typed = $("#who-note");
    note = note || (typed ? typed.value.trim() : "");
    await api("/items/" + id + "/status", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ status, by: by || undefined, note: note || undefined }),
    });
    if (typed) typed.value = "";
    ok = true;
  } catch (e) {
    showUndo(e.message, null);
  }
  refresh();
  return ok;
}

const VERB = { claimed: "Claimed", "in-progress": "Started", fulfilled: "Marked done",
  withdrawn: "Withdrew", reopened: "Reopened" };

// After a change, a bar that can undo it (reopen), since done items leave the board.
function showUndo(text, undo) {
  const bar = $("#undo");
  if (!bar) return;
  bar.replaceChildren(text, undo ? button("Undo", async () => {
    bar.hidden = true;
    await setStatus(undo, "reopened", "undone");
  }) : null);
  bar.className = undo ? "" : "err";
  bar.hidden = false;
}

async function change(i, status) {
  if (await setStatus(i.short_id, status)) {
    showUndo(VERB[status] + ": " + i.title + ". ", status === "reopened" ? null : i.short_id);
  }
}

// "Done" asks first: it takes the item off the board for everyone. The item being
// confirmed survives the live refreshes that redraw the cards.
let confirming = null;

function doneButton(i) {
  return button("Done", () => { confirming = i.id; refresh(); });
}

function confirmDone(i) {
  return el("div", { class: "actions confirm" }, el("span", {}, "Really done? "),
    button("Yes, done", () => { confirming = null; change(i, "fulfilled"); }),
    button("Not yet", () => { confirming = null; refresh(); }));
}

// Who holds it: the name they gave, the hub they claimed at, and since when.
function holderLine(i) {
  if (!i.held_since) return null;
  const at = i.holder_hub ? " at " + i.holder_hub : "";
  const who = i.holder_name || (i.holder_hub ? "someone" : "node " + i.holder);
  return el("p", { class: "holder" }, "Held by " + who + at + " since " + hhmm(i.held_since));
}

function historyList(i) {
  if (!i.history || !i.history.length) return null;
  return el("details", { class: "history" },
    el("summary", {}, "History (" + i.history.length + ")"),
    el("ol", {}, ...i.history.map((h) => el("li", {},
      h.status + " by " + (h.by ? h.by + " (" + (h.hub || h.author) + ")" : (h.hub || h.author)) +
      ", " + hhmm(h.at) + (h.applied ? "" : " (not applied)") + (h.note ? ": " + h.note : "")))));
}

function itemCard(i) {
  const qty = i.qty ? i.qty + (i.unit ? " " + i.unit : "") : null;
  const actions = el("div", { class: "actions" });
  if (i.status === "open") actions.append(button("Claim", () => change(i, "claimed")));
  if (["open", "claimed"].includes(i.status)) actions.append(button("Start", () => change(i, "in-progress")));
  if (["open", "claimed", "in-progress"].includes(i.status)) actions.append(doneButton(i));
  if (["claimed", "in-progress", "fulfilled"].includes(i.status)) actions.append(button("Reopen", () => change(i, "reopened")));
  // Only the poster can withdraw; posts made through this hub are this node's.
  if (["open", "claimed", "in-progress"].includes(i.status) && i.author === myAuthor) {
    actions.append(button("Withdraw", () => change(i, "withdrawn")));
  }
  return el("li", { "data-id": i.id },
    el("span", { class: "badge u-" + i.urgency }, i.urgency),
    el("span", { class: "badge s-" + i.status }, i.status),
    el("span", { class: "badge" }, i.category),
    el("h2", {}, i.title),
    qty ? el("p", {}, "Quantity: " + qty) : null,
    i.place && i.place.label ? el("p", {}, "Where: " + i.place.label) : null,
    i.contact ? el("p", {}, "Contact: " + i.contact) : null,
    i.details ? el("p", {}, i.details) : null,
    holderLine(i),
    // An event stamped before this program was built (a Pi without a clock) is shown
    // with when it arrived here, not with its 1970 stamp.
    el("p", {}, (i.arrived_at ? "arrived " + ago(i.arrived_at) + " (its computer's clock was wrong)"
      : ago(i.created_at)) + " · " + (i.author_hub || i.short_id)),
    historyList(i),
    confirming === i.id ? confirmDone(i) : actions);
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
const boards = { needs: { shown: PAGE, next: null }, offers: { shown: PAGE, next: null } };

// Answers of an older refresh that arrive after a newer one started are dropped.
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

// Draws a page of a board (or appends it), with "Showing n of N" and "Show more".
function showBoard(kind, page, append) {
  const list = $("#" + kind);
  const b = boards[kind];
  if (append) {
    list.append(...page.items.map(itemCard));
  } else {
    const empty = [...filterQuery().keys()].length ? "Nothing matches these filters."
      : kind === "needs" ? "No open needs." : "No open offers.";
    fill(list, page.items, itemCard, empty);
  }
  b.next = page.next_cursor || null;
  const shown = list.querySelectorAll("li[data-id]").length;
  b.shown = Math.max(PAGE, shown);
  $("#" + kind + "-more").replaceChildren(page.total ? "Showing " + shown + " of " + page.total : "",
    b.next ? button("Show more", () => loadMore(kind)) : null);
}

async function loadMore(kind) {
  const b = boards[kind];
  if (!b.next) return;
  // A refresh under way would redraw fewer cards: its answer is dropped, and one that
  // starts meanwhile drops this one (it asks for as many cards as are shown).
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
  sel.replaceChildren(el("option", { value: "" }, "All hubs"), ...names.map((n) => el("option", { value: n }, n)));
  sel.value = names.includes(chosen) ? chosen : "";
}

async function refresh() {
  const seq = ++refreshes;
  try {
    const asks = [
      api(boardPath("needs", Math.min(boards.needs.shown, MAX_PAGE))), api("/status"),
      api(boardPath("offers", Math.min(boards.offers.shown, MAX_PAGE))), api("/hubs"), api("/alerts?lang=" + encodeURIComponent(navigator.language || "")),
    ];
    for (const a of asks) a.catch(() => {}); // each is awaited below; no unhandled rejections
    // The needs and alerts first: they are the first screen, and need not wait for the
    // rest (an alert is never drawn after the cards).
    const [needs, alerts] = await Promise.all([asks[0], asks[4]]);
    if (seq !== refreshes) return;
    $("#alerts").replaceChildren(...alerts.alerts.map(alertBanner));
    showBoard("needs", needs, false);
    const [, st, offers, hubs] = await Promise.all(asks);
    if (seq !== refreshes) return;
    $("#community").textContent = "· " + st.community;
    myAuthor = st.author ? st.author.slice(0, 8) : null;
    $("#meta").textContent = st.peers + " hub computers connected" + peerNames(st.peer_list) +
      " · " + st.events + " records";
    $("#clock").hidden = !st.clock.warning;
    $("#clock").textContent = st.clock.warning || "";
    // Nodes of another community that tried to connect (a mistyped passphrase, most often).
    // ... and those this node dialled that answered for another community.
    const refusedBy = st.refused_by || [];
    $("#refused").hidden = !st.refused.length && !refusedBy.length;
    $("#refused").textContent = st.refused.map((r) => "A node at " + r.ip +
      " tried to join with a different passphrase or community name (" + r.attempts + "×).")
      .concat(refusedBy.map((r) => "The node at " + r.ip +
        " belongs to another community (a different passphrase or community name; " +
        r.attempts + "×)."))
      .join(" ");
    showBoard("offers", offers, false);
    hubChoices(hubs.hubs);
    fill($("#hubs"), hubs.hubs, (h) => el("li", {},
      el("h2", {}, h.name),
      h.place.label ? el("p", {}, h.place.label) : null,
      el("p", {}, h.services.join(" · "))), "No hubs announced yet.");
  } catch (e) {
    if (seq === refreshes) $("#meta").textContent = "cannot reach the hub computer: " + e.message;
  }
}

// An alert with its way out: "All clear" (anyone) or "Cancel" (the hub that raised
// it; the API refuses anyone else and the message says so). An all-clear alert stays
// up, marked so, until it expires.
function alertBanner(a) {
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
    (clear ? "ALL CLEAR: " : a.severity.toUpperCase() + ": ") + a.headline,
    a.area ? el("small", {}, a.area) : null,
    clear ? null : el("div", { class: "actions" },
      button("All clear", end("all-clear", "Mark \"" + a.headline + "\" all clear for everyone?")),
      button("Cancel alert", end("cancelled", "Cancel \"" + a.headline + "\"? Only the hub that raised it can."))));
}

// The match view costs the hub computer real work, so it is fetched only while shown,
// a page at a time (the API lists the best few offers per need and a cursor).
function matchCard(m) {
  const more = m.offers_total - m.offers.length;
  return el("li", {},
    el("span", { class: "badge u-" + m.need.urgency }, m.need.urgency),
    el("h2", {}, m.need.title),
    ...(m.offers.length
      ? m.offers.map((o) => el("p", {}, "← " + o.title + (o.distance_m != null ? " (" + o.distance_m + " m)" : "")))
      : [el("p", {}, "No offer matches yet.")]),
    more > 0 ? el("p", {}, "… and " + more + " more") : null);
}

async function refreshMatch(cursor) {
  const list = $("#match");
  try {
    const page = await api("/match" + (cursor ? "?cursor=" + encodeURIComponent(cursor) : ""));
    if (cursor) {
      list.querySelector("li.more")?.remove();
      list.append(...page.matches.map(matchCard));
    } else {
      fill(list, page.matches, matchCard, "No open needs.");
    }
    if (page.next_cursor) {
      const shown = list.querySelectorAll("li:not(.more)").length;
      list.append(el("li", { class: "more" },
        button("Show more (" + shown + " of " + page.needs_total + " needs)", () => refreshMatch(page.next_cursor))));
    }
  } catch (e) {
    list.replaceChildren(el("li", { class: "empty" }, "cannot load matches: " + e.message));
  }
}

function personCard(p) {
  const last = p.latest
    ? p.latest.outcome + (p.latest.detail ? " (" + p.latest.detail + ")" : "") + ", " + ago(p.latest.at)
    : "never visited";
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
    const what = prompt("What help does " + p.name + " need?");
    if (what && what.trim()) await check("needs-help", what.trim())();
  };
  const moved = async () => {
    const where = prompt("Where is " + p.name + " now?");
    if (where && where.trim()) await check("moved", where.trim())();
  };
  return el("li", { "data-id": p.id },
    el("span", { class: "badge w-" + p.standing }, p.standing.replace("-", " ")),
    el("h2", {}, p.name),
    el("p", {}, "Where: " + p.place.label),
    p.risks.length ? el("p", {}, "At risk: " + p.risks.join(", ")) : null,
    el("p", {}, "Last check: " + last + (p.latest && p.latest.by ? " by " + p.latest.by : "")),
    el("div", { class: "actions" },
      button("Safe", check("safe")), button("No answer", check("no-answer")),
      button("Not at home", check("not-home")), button("Needs help…", help), button("Moved…", moved)));
}

async function refreshPeople() {
  const form = $("#pin-form");
  try {
    const r = await api("/people");
    form.hidden = true;
    $("#person-form").hidden = false;
    $("#by-label").hidden = false;
    fill($("#people"), r.people, personCard, "Nobody registered for welfare checks.");
  } catch (e) {
    $("#people").replaceChildren();
    $("#person-form").hidden = true;
    $("#by-label").hidden = true;
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
  };
  for (const k of ["phone", "note"]) {
    const v = (f.get(k) || "").trim();
    if (v) body[k] = v;
  }
  const out = $("#person-result");
  try {
    await api("/people", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    out.className = "";
    out.textContent = "Added. Every hub's volunteers will see when a visit is due.";
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

async function loadCategories() {
  const c = await api("/categories");
  $("#category").replaceChildren(...c.categories.map((x) => el("option", { value: x.name }, x.description)));
  $("#f-category").append(...c.categories.map((x) => el("option", { value: x.name }, x.description)));
}

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
    out.textContent = "Posted (" + item.short_id + "). Every hub will see it.";
    ev.target.reset();
    refresh();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});

let pending = null;
function soon() {
  if (!pending) {
    pending = setTimeout(() => {
      pending = null;
      refresh();
      if (!$("#tab-people").hidden) refreshPeople();
      if (!$("#tab-match").hidden) refreshMatch();
    }, 250);
  }
}
setupWho();
setupFilters();
refresh();
loadCategories().catch(() => {});
// Opened after the first screen's requests, so that it does not hold a connection first.
const stream = new EventSource("/api/v1/stream");
stream.addEventListener("new", soon);
stream.addEventListener("lagged", soon);
setInterval(refresh, 30000);

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
  out.textContent = "Importing…";
  try {
    const r = await uploadFile("/bundle", "application/octet-stream", file);
    out.textContent = `${r.new} new, ${r.known} already known, ${r.refused} refused.`;
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
    out.textContent = n ? `Posted ${n} official alert${n === 1 ? "" : "s"}.` : "Already posted from an earlier import.";
    refresh();
  } catch (e) {
    out.className = "err";
    out.textContent = e.message;
  }
});
