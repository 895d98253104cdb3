// Paper (issue 13): the printable board and the welfare round sheet, printed to PDF
// by Chromium (playwright's page.pdf, and `aidmesh print --out FILE.pdf`), read back
// with pdftotext. Run by tests/tests/web_print.rs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { startNode, launch, post, lanAddress } from "./helpers.mjs";

// In the order Chromium drew it (-raw), which is the page's: the board's columns one
// after the other, each card whole.
function pdfText(file) {
  return execFileSync("pdftotext", ["-raw", file, "-"], { encoding: "utf8" });
}
function pdfPage(file, n) {
  return execFileSync("pdftotext", ["-raw", "-f", String(n), "-l", String(n), file, "-"], { encoding: "utf8" });
}
function pdfPages(file) {
  const info = execFileSync("pdfinfo", [file], { encoding: "utf8" });
  return Number(/Pages:\s+(\d+)/.exec(info)[1]);
}
async function api(base, path, body) {
  const r = await fetch(base + "/api/v1" + path, body ? {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  } : {});
  const v = await r.json();
  if (!r.ok) throw new Error(path + ": " + JSON.stringify(v));
  return v;
}
// pdftotext keeps the text, but may break a line anywhere: compare without spaces.
const flat = (s) => s.replace(/\s+/g, "");

test("the printed board and round sheet, in Spanish and English, as PDF text", async (t) => {
  const node = await startNode(t, "Elm Street");
  await api(node.base, "/hubs", { name: "Salón de Elm St", services: ["water"] });
  const low = await post(node.base, "needs", { title: "Mantas para 2", category: "shelter", urgency: "low" });
  const urgent = await post(node.base, "needs", { title: "Insulina para Rosa", category: "medical",
    urgency: "life-threatening", place: "14 River Rd", contact: "Rosa 555-0142",
    details: "La nevera está en la cocina; llamar antes de venir." });
  const water = await post(node.base, "needs", { title: "Agua potable", category: "water", urgency: "high",
    qty: 40, unit: "litros" });
  const typical = [];
  for (let i = 0; i < 40; i++) {
    // As people post them: a contact on most, a line of details on half.
    typical.push(await post(node.base, i % 4 ? "needs" : "offers", { title: "Item " + i,
      category: ["food", "water", "power", "transport"][i % 4], urgency: ["normal", "high", "low"][i % 3],
      place: (i + 1) + " Mill Lane", contact: i % 5 ? "Ana 555-01" + i : undefined,
      details: i % 2 ? "Puerta lateral abierta hasta las 18 h; preguntar por la coordinadora." : undefined }));
  }
  const offer = await post(node.base, "offers", { title: "Generador con gasolina", category: "power" });
  // People due a visit (never visited, no answer), and one just seen safe (not due).
  const bo = await api(node.base, "/people", { name: "Bo Lindqvist", place: "3 River Rd",
    every: "12h", consent: "self", risks: ["oxygen"] });
  const ada = await api(node.base, "/people", { name: "Ada Okafor", place: "12 Mill Lane",
    every: "12h", consent: "self", risks: ["lives alone"] });
  const cy = await api(node.base, "/people", { name: "Cy Young", place: "2 Mill Lane", every: "12h",
    consent: "relative" });
  const dee = await api(node.base, "/people", { name: "Dee Safe", place: "1 Oak St", every: "12h",
    consent: "self" });
  await api(node.base, "/people/" + cy.short_id + "/checkins", { outcome: "no-answer" });
  await api(node.base, "/people/" + dee.short_id + "/checkins", { outcome: "safe" });

  const browser = await launch(t);
  const page = await browser.newPage();
  const pdf = join(node.dir, "board-es.pdf");
  await page.goto(node.base + "/print?lang=es");
  await page.pdf({ path: pdf, format: "A4", printBackground: true });
  const text = pdfText(pdf);
  const f = flat(text);
  for (const want of ["Necesidades y ofertas", "Centro: Salón de Elm St", "Impreso", "Necesidades",
    "Ofertas", "atención médica y medicamentos", "agua e higiene", "RIESGO VITAL", "Insulina para Rosa",
    "Dónde: 14 River Rd", "Generador con gasolina", "40 litros", urgent.short_id, offer.short_id]) {
    assert.ok(f.includes(flat(want)), `board PDF lacks ${want}:\n${text}`);
  }
  // Grouped by category, the most urgent first (medical, with a life-threatening need,
  // before water), and the low-urgency shelter need after both. By short id: a title
  // may be split by a line of the other column in pdftotext's layout.
  const at = (id) => { const i = f.indexOf(id); assert.ok(i >= 0, `${id} not in:\n${text}`); return i; };
  assert.ok(at(urgent.short_id) < at(water.short_id), text);
  assert.ok(f.indexOf(flat("atención médica")) < f.indexOf(flat("agua e higiene")), text);
  assert.ok(at(urgent.short_id) < at(low.short_id), text);
  // The page's width is used: compact cards in columns. Items on page 1 of A4 (short
  // ids counted with pdftotext): 11 of these 44 before (narrow lists, without contact or
  // details), 19 now with them (docs/hub.md, "Languages, the desk and paper").
  const ids = [low, urgent, water, ...typical, offer].map((i) => i.short_id);
  const first = flat(pdfPage(pdf, 1));
  const onFirst = ids.filter((id) => first.includes(id)).length;
  console.log(`items on page 1 of the A4 board: ${onFirst} of ${ids.length}; pages: ${pdfPages(pdf)}`);
  assert.ok(onFirst >= 17, `only ${onFirst} items on page 1 of the printed board`);
  // Issue 29: each item's contact and details, as the open board shows them to anyone;
  // nothing of the welfare register (the open board shows it to no one).
  for (const want of ["Contacto: Rosa 555-0142", "La nevera está en la cocina", "Contacto: Ana 555-011",
    "Puerta lateral abierta"]) {
    assert.ok(f.includes(flat(want)), `board PDF lacks ${want}:\n${text}`);
  }
  for (const never of ["Lindqvist", "Okafor", "Cy Young", "3 River Rd", "oxygen"]) {
    assert.ok(!f.includes(flat(never)), `the board PDF shows welfare data (${never})`);
  }
  // Issue 11: at how many of the community's hubs each item is known.
  assert.ok(f.includes(flat("conocido en 1 de 1 centros")), text);
  const pages = pdfPages(pdf);
  assert.ok(pages >= 1 && pages <= 4, `a typical board (45 items) on 1-4 A4 pages, not ${pages}`);
  // The QR code is there (an SVG image of the hub address).
  assert.equal(await page.locator("svg.qr").count(), 1);
  assert.match(await page.textContent("header"), new RegExp(node.base.replace(/\./g, "\\.") + "/"));
  // A landmark for screen readers, and no sideways scrolling on a 320 px phone
  // (issue 29: the QR code pushed the page wider than the screen).
  assert.equal(await page.locator("main").count(), 1, "the printout has a main landmark");
  // Columns on a wide page, one column on a 320 px phone.
  const lefts = async (p) => new Set(await p.$$eval(".cards li", (l) => l.map((e) => Math.round(e.getBoundingClientRect().left))));
  const wide = await (await browser.newContext({ viewport: { width: 1000, height: 800 } })).newPage();
  await wide.goto(node.base + "/print?lang=es");
  assert.ok((await lefts(wide)).size >= 2, "the board uses one column on a wide page");
  const narrow = await (await browser.newContext({ viewport: { width: 320, height: 640 } })).newPage();
  for (const path of ["/print?lang=es&url=http://192.168.1.5:4611/", "/print/round?lang=es"]) {
    await narrow.goto(node.base + path);
    const [scroll, client] = await narrow.evaluate(() =>
      [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `${path} scrolls sideways at 320 px: ${scroll} > ${client}`);
  }
  await narrow.goto(node.base + "/print?lang=es");
  assert.equal((await lefts(narrow)).size, 1, "one column of cards on a 320 px phone");
  // English by the browser's language when not asked.
  const en = await (await browser.newContext({ locale: "en-GB" })).newPage();
  await en.goto(node.base + "/print");
  const enPdf = join(node.dir, "board-en.pdf");
  await en.pdf({ path: enPdf, format: "A4" });
  const enText = flat(pdfText(enPdf));
  for (const want of ["Needs and offers", "medical care and medication", "LIFE-THREATENING", "Printed",
    "known at 1 of 1 hubs"]) {
    assert.ok(enText.includes(flat(want)), `English board PDF lacks ${want}`);
  }

  // The round sheet: the hub computer may print it (the browser is on loopback).
  const round = join(node.dir, "round-es.pdf");
  await page.goto(node.base + "/print/round?lang=es");
  await page.pdf({ path: round, format: "A4" });
  const rt = pdfText(round);
  const r = flat(rt);
  for (const want of ["Ronda de visitas", "Bo Lindqvist", "3 River Rd", "En riesgo: oxygen",
    "Ada Okafor", "Cy Young", "no responde", "nunca visitada", "a salvo", "no estaba en casa",
    bo.short_id, ada.short_id, cy.short_id, "aidmesh welfare check"]) {
    assert.ok(r.includes(flat(want)), `round PDF lacks ${want}:\n${rt}`);
  }
  assert.ok(!r.includes("DeeSafe"), "someone seen safe is not due: " + rt);
  // Walking order: Mill Lane (2, then 12), then River Rd.
  assert.ok(r.indexOf("CyYoung") < r.indexOf("AdaOkafor") && r.indexOf("AdaOkafor") < r.indexOf("BoLindqvist"), rt);

  // The ticks typed back in by the short id printed on the sheet.
  const out = node.cli("welfare", "check", bo.short_id, "--safe", "--by", "Sam");
  assert.match(out, /Bo Lindqvist/);
  const after = await api(node.base, "/people/" + bo.short_id);
  assert.equal(after.latest.outcome, "safe");

  // The CLI: HTML and PDF.
  const cliPdf = join(node.dir, "cli-board.pdf");
  assert.match(node.cli("print", "--out", cliPdf, "--lang", "es", "--url", "http://192.168.1.5:8080/"),
    /wrote .*cli-board\.pdf \(\d+ bytes, pdf\)/);
  const ct = flat(pdfText(cliPdf));
  assert.ok(ct.includes(flat("Insulina para Rosa")) && ct.includes(flat("http://192.168.1.5:8080/")), ct);
  const cliHtml = join(node.dir, "round.html");
  node.cli("print", "--round", "--out", cliHtml);
  const html = execFileSync("cat", [cliHtml], { encoding: "utf8" });
  assert.ok(html.includes("Welfare round") && html.includes("Ada Okafor"), html);
});

test("a phone on the hub's Wi-Fi prints the board; the round sheet needs the PIN", async (t) => {
  const PIN = "246810";
  const node = await startNode(t, "Elm Street", [], ["--volunteer-pin", PIN], "0.0.0.0:0");
  await post(node.base, "needs", { title: "Blankets", category: "shelter" });
  await api(node.base, "/people", { name: "Ada Okafor", place: "12 Mill Lane", every: "12h", consent: "self" });
  const lan = `http://${lanAddress()}:${node.base.split(":").pop()}`;
  const board = await fetch(lan + "/print");
  assert.equal(board.status, 200);
  assert.match(await board.text(), /Blankets/);
  const refused = await fetch(lan + "/print/round");
  assert.equal(refused.status, 401, "the welfare guard asks for the PIN");
  assert.ok(!(await refused.text()).includes("Ada"), "the round sheet leaked without a PIN");
  const ok = await fetch(lan + "/print/round", { headers: { "x-volunteer-pin": PIN } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /Ada Okafor/);
});
