/* The review sheet's only script (audited_ft.review). Inlined into sheet.html and pinned there by its sha256 in the
   Content-Security-Policy. It reads item ids from the page, keeps choices in localStorage (a reload loses nothing)
   and saves the ratings as CSV through a Blob download; it sends nothing anywhere. No inline handlers: CSP forbids them. */
(function () {
"use strict";
var items = Array.prototype.slice.call(document.querySelectorAll("fieldset.item"));
var sheet = document.body.getAttribute("data-sheet") || "";
var key = "audited-ft-review-" + sheet, url = null;
var rater = document.getElementById("rater"), status = document.getElementById("status");
var link = document.getElementById("download"), out = document.getElementById("csv-text");
function load() { try { return JSON.parse(localStorage.getItem(key) || "{}") || {}; } catch (e) { return {}; } }
function store(state) { try { localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* storage off */ } }
function picked() {
  return items.map(function (f) {
    var c = f.querySelector("input[type=radio]:checked");
    return [f.getAttribute("data-item"), c ? c.value : ""];
  });
}
function cell(v) {
  v = String(v);
  if (/^[=+\-@\t\r]/.test(v)) { v = "'" + v; }
  return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
}
function update() {
  var rows = picked(), state = {rater: rater.value, choices: {}}, done = 0;
  rows.forEach(function (r) { if (r[1]) { done += 1; state.choices[r[0]] = r[1]; } });
  status.textContent = done + " of " + rows.length + " items rated";
  store(state);
}
function restore() {
  var s = load(), choices = s.choices || {};
  if (typeof s.rater === "string") { rater.value = s.rater; }
  items.forEach(function (f) {
    var v = choices[f.getAttribute("data-item")];
    f.querySelectorAll("input[type=radio]").forEach(function (r) { if (r.value === v) { r.checked = true; } });
  });
}
function save() {
  var name = rater.value.trim(), lines = ["item_id,rater,choice,sheet"];
  if (!name) { status.textContent = "Enter your name or initials before saving."; rater.focus(); return; }
  picked().forEach(function (r) { if (r[1]) { lines.push([r[0], name, r[1], sheet].map(cell).join(",")); } });
  if (lines.length === 1) { status.textContent = "Nothing rated yet: choose A, tie or B for at least one item."; return; }
  var text = lines.join("\r\n") + "\r\n";
  if (url) { URL.revokeObjectURL(url); }
  url = URL.createObjectURL(new Blob(["\ufeff" + text], {type: "text/csv;charset=utf-8"}));
  link.href = url;
  link.download = "ratings-" + (name.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40) || "rater") + ".csv";
  link.hidden = false;
  out.value = text;
  status.textContent = (lines.length - 1) + " rating(s) saved as " + link.download;
  link.click();
}
restore();
document.addEventListener("change", update);
rater.addEventListener("input", update);
document.getElementById("save").addEventListener("click", save);
update();
})();
