// The SMS gateway panel (/sms) for the hub computer and PIN holders: the gateway's
// status, the review list with one action per text, the welfare round. Everything
// from the node is shown with textContent, never as HTML. docs/sms.md.
"use strict";

const ES = {
  title: "Pasarela SMS", back: "Volver al tablón", pin: "PIN de voluntario", unlock: "Mostrar",
  status: "Estado", round: "Enviar la ronda de bienestar", review: "Mensajes por revisar",
  empty: "No hay mensajes por revisar.", daemon: "Demonio", today: "Hoy", waiting: "En espera",
  cap: "Límite diario", none: "ninguno", in: "recibidos", out: "enviados",
  capReached: "Límite diario alcanzado: las respuestas esperan, en orden, hasta mañana (UTC).",
  need: "Necesidad", offer: "Oferta", post: "Publicar", dismiss: "Descartar", from: "de",
  what: "Qué", kind: "Tipo", category: "Categoría", where: "Dónde", posted: "Publicado; el remitente recibe la respuesta.",
  dismissed: "Descartado.", queued: "Ronda enviada a", noGateway: "Este nodo no tiene pasarela SMS.",
  running: "en marcha", notRunning: "no responde", unknown: "desconocido",
};
const EN = {
  daemon: "Daemon", today: "Today", waiting: "Waiting", cap: "Daily cap", none: "none",
  in: "in", out: "out",
  capReached: "Daily cap reached: replies wait, in order, until tomorrow (UTC).",
  need: "Need", offer: "Offer", post: "Post", dismiss: "Dismiss", from: "from",
  what: "What", kind: "Kind", category: "Category", where: "Where", posted: "Posted; the sender gets the reply.",
  dismissed: "Dismissed.", queued: "Round texted to", noGateway: "This node runs no SMS gateway.",
  running: "running", notRunning: "not answering", unknown: "unknown",
};
const lang = (localStorage.getItem("lang") || navigator.language || "en").startsWith("es") ? "es" : "en";
const T = (k) => (lang === "es" ? ES[k] : EN[k]) || EN[k] || k;
const $ = (s) => document.querySelector(s);

function headers(json) {
  const h = {};
  const pin = sessionStorage.getItem("pin");
  if (pin) h["x-volunteer-pin"] = pin;
  if (json) h["content-type"] = "application/json";
  return h;
}

function say(text) {
  $("#message").textContent = text;
}

async function api(path, body) {
  const r = await fetch(path, body === undefined
    ? { headers: headers(false) }
    : { method: "POST", headers: headers(true), body: JSON.stringify(body) });
  const v = await r.json().catch(() => ({}));
  if (r.status === 401) {
    $("#pin-form").hidden = false;
    throw new Error(v.detail || "PIN");
  }
  if (!r.ok) throw new Error(v.detail || String(r.status));
  return v;
}

function row(dl, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  dl.append(dt, dd);
}

function field(label, input) {
  const l = document.createElement("label");
  l.textContent = label + " ";
  l.append(input);
  return l;
}

function reviewItem(t) {
  const li = document.createElement("li");
  const head = document.createElement("p");
  head.textContent = `${T("from")} ${t.phone} · ${new Date(t.at_ms).toLocaleString()} · ${t.reason}`;
  const q = document.createElement("blockquote");
  q.textContent = t.text;
  const s = t.suggestion || {};
  const kind = document.createElement("select");
  for (const k of ["need", "offer"]) {
    const o = document.createElement("option");
    o.value = k;
    o.textContent = T(k);
    kind.append(o);
  }
  kind.value = s.kind === "offer" ? "offer" : "need";
  const title = Object.assign(document.createElement("input"), { value: s.title || "" });
  const category = Object.assign(document.createElement("input"), { value: s.category || "other" });
  const place = Object.assign(document.createElement("input"), { value: s.place || "" });
  const post = Object.assign(document.createElement("button"), { type: "button", textContent: T("post") });
  const dismiss = Object.assign(document.createElement("button"), { type: "button", textContent: T("dismiss") });
  post.addEventListener("click", () => act(t.id, {
    action: kind.value, title: title.value, category: category.value, place: place.value,
  }, T("posted")));
  dismiss.addEventListener("click", () => act(t.id, { action: "dismiss" }, T("dismissed")));
  li.append(head, q, field(T("what"), title), field(T("category"), category),
    field(T("where"), place), field(T("kind"), kind), post, dismiss);
  return li;
}

async function act(id, body, done) {
  try {
    await api(`/api/v1/sms/review/${encodeURIComponent(id)}`, body);
    say(done);
  } catch (e) {
    say(e.message);
  }
  refresh();
}

async function refresh() {
  try {
    const s = await api("/api/v1/sms/status");
    const dl = $("#status");
    dl.replaceChildren();
    if (!s.gateway) {
      say(T("noGateway"));
      return;
    }
    const d = s.daemon || {};
    row(dl, T("daemon"), d.seen === true ? T("running") : d.seen === false ? T("notRunning") : T("unknown"));
    row(dl, T("today"), `${s.today.in} ${T("in")}, ${s.today.out} ${T("out")}`);
    row(dl, T("waiting"), String(s.waiting));
    row(dl, T("cap"), s.daily_cap == null ? T("none") : String(s.daily_cap));
    $("#cap-note").hidden = !s.cap_reached;
    $("#cap-note").textContent = T("capReached");
    const r = await api("/api/v1/sms/review");
    $("#review").replaceChildren(...r.texts.map(reviewItem));
    $("#review-empty").hidden = r.texts.length > 0;
  } catch (e) {
    say(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.documentElement.lang = lang;
  if (lang === "es") {
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = T(el.dataset.t);
  }
  $("#pin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("pin", $("#pin").value);
    $("#pin-form").hidden = true;
    refresh();
  });
  $("#round").addEventListener("click", async () => {
    try {
      const v = await api("/api/v1/sms/round", {});
      say(`${T("queued")} ${v.queued}`);
    } catch (e) {
      say(e.message);
    }
    refresh();
  });
  refresh();
  setInterval(refresh, 5000);
});
