/* The evidence browser's only script (audited_ft.report.evidence). Inlined into evidence.html and pinned there by its
   sha256 in the Content-Security-Policy. It reads the items from the page's JSON data block and builds every element
   with createElement and textContent: model text never passes through an HTML parser. The orders come precomputed
   from Python (one definition of "worst first"); this script only filters, pages and draws. No network, no storage,
   no inline handlers (CSP forbids them). */
(function () {
"use strict";
var data = JSON.parse(document.getElementById("evidence-data").textContent);
var items = data.items, pageSize = data.page_items, page = 0;
var byId = function (id) { return document.getElementById(id); };
var ui = {probe: byId("f-probe"), group: byId("f-group"), variant: byId("f-variant"), change: byId("f-change"),
          sort: byId("f-sort"), list: byId("items"), status: byId("status"), prev: byId("prev"), next: byId("next"),
          info: byId("page-info"), heading: byId("items-heading")};
var worst = items.map(function (_, i) { return i; });

function make(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined && text !== null) { e.textContent = String(text); }
  return e;
}
function num(v) {
  if (v === null || v === undefined) { return "—"; }
  return typeof v === "number" ? v.toFixed(3) : String(v);
}
function signed(v) { return (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(3); }
function groupKey(it) { return it.probe + "|" + it.group; }

function fillGroups() {
  var keep = ui.group.value, seen = Object.create(null), opts = [];
  items.forEach(function (it) {
    if (it.group && (!ui.probe.value || it.probe === ui.probe.value) && !seen[groupKey(it)]) {
      seen[groupKey(it)] = true;
      opts.push([groupKey(it), (ui.probe.value ? "" : data.probes[it.probe].title + ": ") + it.group]);
    }
  });
  opts.sort(function (a, b) { return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0; });
  while (ui.group.options.length > 1) { ui.group.remove(1); }
  opts.forEach(function (o) { var e = make("option", null, o[1]); e.value = o[0]; ui.group.appendChild(e); });
  ui.group.value = seen[keep] ? keep : "";
  ui.group.disabled = opts.length === 0;
}
function matches(it) {
  var c = ui.change.value;
  return (!ui.probe.value || it.probe === ui.probe.value) && (!ui.group.value || groupKey(it) === ui.group.value) &&
    (!ui.variant.value || it.variant === ui.variant.value) &&
    (!c || (c === "changed" && it.changed) || (c === "unchanged" && !it.changed) ||
     (c === "worse" && it.harm > 0) || (c === "better" && it.harm < 0));
}

function harmBadge(it) {
  var kind = it.harm > 0 ? "worse" : it.harm < 0 ? "better" : it.changed ? "changed" : "same";
  var words = {worse: "▲ worse ", better: "▼ better ", changed: "◆ changed, same outcome ", same: "= unchanged "};
  return [kind, make("span", "harm harm-" + kind, words[kind] + signed(it.harm))];
}
function diffText(segs, keep) {
  var box = make("div", "untrusted");
  segs.forEach(function (s) {
    if (s[0] === 0) { box.appendChild(document.createTextNode(s[1])); }
    else if (s[0] === keep) { box.appendChild(make(keep < 0 ? "del" : "ins", null, s[1])); }
  });
  if (!box.firstChild) { box.appendChild(make("em", null, "(empty)")); }
  return box;
}
function side(title, segs, keep) {
  var box = make("div", "box");
  box.appendChild(make("h4", null, title));
  box.appendChild(diffText(segs, keep));
  return box;
}
function pairsList(rows) {
  var dl = make("dl");
  rows.forEach(function (r) { dl.appendChild(make("dt", null, r[0])); dl.appendChild(make("dd", null, r[1])); });
  return dl;
}
function scoreTable(it, other) {
  var t = make("table", "scores"), head = make("tr"), body = make("tbody"), thead = make("thead");
  ["score", "base", other].forEach(function (h) {
    var th = make("th", null, h);
    th.scope = "col";
    head.appendChild(th);
  });
  thead.appendChild(head);
  t.appendChild(thead);
  it.scores.forEach(function (r) {
    var tr = make("tr"), th = make("th", null, r[0]);
    th.scope = "row";
    tr.appendChild(th);
    tr.appendChild(make("td", typeof r[1] === "number" ? "num" : null, num(r[1])));
    tr.appendChild(make("td", typeof r[2] === "number" ? "num" : null, num(r[2])));
    body.appendChild(tr);
  });
  t.appendChild(body);
  return t;
}
function body(it) {
  var div = make("div", "body"), other = data.variants[it.variant] || it.variant, meta = make("p", "metric");
  meta.appendChild(document.createTextNode("Feeds: "));
  meta.appendChild(make("code", null, it.metric));
  meta.appendChild(document.createTextNode(" · harm delta " + signed(it.harm) + ": " + data.probes[it.probe].harm));
  div.appendChild(meta);
  if (it.prompt) {
    div.appendChild(make("h4", null, data.probes[it.probe].prompt));
    div.appendChild(make("div", "box untrusted", it.prompt));
  }
  if (it.facts) { div.appendChild(pairsList(it.facts)); }
  (it.texts || []).forEach(function (t) {
    var pair = make("div", "pair");
    pair.appendChild(side("base — " + t.label, t.diff, -1));
    pair.appendChild(side(other + " — " + t.label, t.diff, 1));
    div.appendChild(pair);
  });
  if (it.clipped) { div.appendChild(make("p", "note", "A text was clipped at " + data.full_chars + " characters.")); }
  div.appendChild(scoreTable(it, other));
  if (data.probes[it.probe].note) { div.appendChild(make("p", "note", data.probes[it.probe].note)); }
  if (it.note) { div.appendChild(make("p", "note", it.note)); }
  return div;
}
function entry(it) {
  var li = make("li", "item"), details = make("details"), summary = make("summary"), badge = harmBadge(it);
  li.classList.add(badge[0]);
  li.setAttribute("data-probe", it.probe);
  li.setAttribute("data-variant", it.variant);
  li.setAttribute("data-harm", String(it.harm));
  li.setAttribute("data-id", it.id);
  summary.appendChild(badge[1]);
  var name = data.probes[it.probe].title + (it.group ? " · " + it.group : "") + " · " +
    (data.variants[it.variant] || it.variant);
  summary.appendChild(document.createTextNode(" " + name + " · "));
  summary.appendChild(make("code", null, it.id));
  var gist = make("span", "gist");
  gist.appendChild(make("span", "side", "base: "));
  gist.appendChild(document.createTextNode(it.gist[0] + " → "));
  gist.appendChild(make("span", "side", (data.variants[it.variant] || it.variant) + ": "));
  gist.appendChild(document.createTextNode(it.gist[1]));
  summary.appendChild(gist);
  details.appendChild(summary);
  details.appendChild(body(it));
  li.appendChild(details);
  return li;
}

function render() {
  var order = ui.sort.value === "harm" ? worst : data.order[ui.sort.value];
  var shown = order.filter(function (i) { return matches(items[i]); });
  var pages = Math.max(1, Math.ceil(shown.length / pageSize));
  page = Math.min(page, pages - 1);
  var first = page * pageSize, slice = shown.slice(first, first + pageSize);
  var frag = document.createDocumentFragment();
  slice.forEach(function (i) { frag.appendChild(entry(items[i])); });
  while (ui.list.firstChild) { ui.list.removeChild(ui.list.firstChild); }
  ui.list.appendChild(frag);
  ui.list.start = first + 1;
  ui.status.textContent = shown.length ? "Showing items " + (first + 1) + "–" + (first + slice.length) + " of " +
    shown.length + " (" + items.length + " in all)." : "No item matches these filters (" + items.length + " in all).";
  ui.info.textContent = "page " + (page + 1) + " of " + pages;
  ui.prev.disabled = page === 0;
  ui.next.disabled = page >= pages - 1;
}
function refilter() { page = 0; render(); }
function turn(step) { page += step; render(); ui.heading.focus(); }

function fromHash() {  // report.html links here as evidence.html#probe=<name>
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("="), select = {probe: ui.probe, variant: ui.variant}[kv[0]];
    var value = decodeURIComponent(kv[1] || "");
    if (select && Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
      select.value = value;
    }
  });
}
fromHash();
fillGroups();
ui.probe.addEventListener("change", function () { fillGroups(); refilter(); });
[ui.group, ui.variant, ui.change, ui.sort].forEach(function (s) { s.addEventListener("change", refilter); });
ui.prev.addEventListener("click", function () { turn(-1); });
ui.next.addEventListener("click", function () { turn(1); });
window.addEventListener("hashchange", function () { fromHash(); fillGroups(); refilter(); });
render();
})();
