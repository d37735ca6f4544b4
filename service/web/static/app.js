// The what-if page: judge a claim with the service's API, show the verdict, edit, judge again.
// Plain JavaScript, no build step and no library. Everything shown is set as text, never as
// HTML, so nothing a claim contains can run as code.
"use strict";

const api = {
  validate: "/v1/claims:validate",
  validateX12: "/v1/claims:validate-x12",
  rules: "/v1/rules",
  table: "/v1/rule-table",
  samples: "/v1/samples",
};

const $ = (id) => document.getElementById(id);
let catalogue = new Map(); // rule id -> catalogue entry
let samples = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

function severity(value) {
  return el("span", { class: `sev ${value}` }, value);
}

// ------------------------------------------------------------------ the claim ----

function readClaim() {
  try {
    return JSON.parse($("claim").value);
  } catch {
    return null;
  }
}

function claimOf(parsed) {
  if (parsed && typeof parsed === "object" && parsed.claim && typeof parsed.claim === "object") {
    return parsed.claim;
  }
  return parsed && typeof parsed === "object" ? parsed : null;
}

function writeClaim(parsed) {
  const box = $("claim");
  const top = box.scrollTop;
  box.value = JSON.stringify(parsed, null, 2);
  box.scrollTop = top; // an edit in the lines table keeps the reader's place
}

// One editable field of a service line: the text box edits the claim JSON in place.
const lineFields = [
  { key: "procedure_code", label: "Procedure code", kind: "text" },
  { key: "modifiers", label: "Modifiers", kind: "list" },
  { key: "units", label: "Units", kind: "number" },
  { key: "place_of_service", label: "Place of service", kind: "text" },
  { key: "service_date", label: "Service date", kind: "text" },
  { key: "diagnosis_pointers", label: "Diagnosis pointers", kind: "numbers" },
];

function shown(value, kind) {
  if (kind === "list" || kind === "numbers") return Array.isArray(value) ? value.join(", ") : "";
  return value === undefined || value === null ? "" : String(value);
}

function parsedField(text, kind) {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (kind === "list") return parts;
  if (kind === "numbers") return parts.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  if (kind === "number") return /^\d+$/.test(text.trim()) ? Number(text.trim()) : text;
  return text;
}

function editLine(index, field, text) {
  const parsed = readClaim();
  const claim = claimOf(parsed);
  if (!claim || !Array.isArray(claim.service_lines) || !claim.service_lines[index]) return;
  claim.service_lines[index][field.key] = parsedField(text, field.kind);
  writeClaim(parsed);
}

function renderLines(claim, findings) {
  const box = $("lines");
  box.replaceChildren();
  if (!claim || !Array.isArray(claim.service_lines)) return;
  const byLine = new Map();
  for (const f of findings) {
    if (f.line_number === null) continue;
    if (!byLine.has(f.line_number)) byLine.set(f.line_number, []);
    byLine.get(f.line_number).push(f);
  }
  const head = el("tr", {}, el("th", { scope: "col" }, "Line"),
    ...lineFields.map((f) => el("th", { scope: "col" }, f.label)),
    el("th", { scope: "col" }, "Findings"));
  const body = el("tbody");
  claim.service_lines.forEach((line, index) => {
    const number = line && line.line_number !== undefined ? line.line_number : index + 1;
    const mine = byLine.get(number) || [];
    const row = el("tr", {
      class: mine.some((f) => f.severity === "error") ? "has-error"
        : mine.length ? "has-warning" : "",
    });
    row.append(el("th", { scope: "row" }, String(number)));
    for (const field of lineFields) {
      const input = el("input", {
        type: "text",
        value: shown(line ? line[field.key] : "", field.kind),
        "aria-label": `Line ${number} ${field.label.toLowerCase()}`,
        "data-line": String(index),
        "data-field": field.key,
      });
      input.addEventListener("input", () => editLine(index, field, input.value));
      row.append(el("td", { class: field.kind === "number" ? "num" : "" }, input));
    }
    row.append(el("td", {}, mine.length
      ? mine.map((f) => f.rule_id).join(", ")
      : "none"));
    body.append(row);
  });
  box.append(el("table", { id: "lines-table" },
    el("caption", {}, "Service lines (edit a cell, then judge again)"),
    el("thead", {}, head), body));
}

function renderFindings(findings) {
  const box = $("findings");
  box.replaceChildren();
  if (!findings.length) return;
  box.append(findingsTable(findings, `Findings (${findings.length})`, "findings-table"));
}

function findingsTable(findings, caption, id) {
  const head = el("tr", {}, ...["Line", "Rule", "Severity", "What is wrong", "Meaning",
    "What to do", "Source"].map((t) => el("th", { scope: "col" }, t)));
  const body = el("tbody");
  for (const f of findings) {
    const rule = catalogue.get(f.rule_id) || {};
    body.append(el("tr", { class: f.severity === "error" ? "has-error" : "has-warning" },
      el("td", {}, f.line_number === null ? "claim" : String(f.line_number)),
      el("td", {}, el("code", {}, f.rule_id)),
      el("td", {}, severity(f.severity)),
      el("td", {}, f.message),
      el("td", {}, rule.meaning || ""),
      el("td", {}, rule.what_to_do || ""),
      el("td", {}, f.reference)));
  }
  return el("table", id ? { id } : { class: "claim-findings" },
    el("caption", {}, caption), el("thead", {}, head), body);
}

function setStatus(kind, text) {
  const status = $("status");
  status.className = `status ${kind}`;
  status.dataset.verdict = kind;
  status.textContent = text;
}

function count(findings, sev) {
  return findings.filter((f) => f.severity === sev).length;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function verdictSummary(verdict) {
  const findings = verdict.findings || [];
  const errors = count(findings, "error");
  const warnings = count(findings, "warning");
  return verdict.verdict === "accepted"
    ? `Accepted: ${verdict.claim_id} has no error findings` +
      (warnings ? ` (${plural(warnings, "warning")})` : "") + "."
    : `Flagged: ${verdict.claim_id} has ${plural(errors, "error finding")}` +
      (warnings ? ` and ${plural(warnings, "warning")}` : "") + ".";
}

function showVerdict(verdict, claim) {
  const findings = verdict.findings || [];
  setStatus(verdict.verdict, verdictSummary(verdict));
  renderLines(claim, findings);
  renderFindings(findings);
}

// ------------------------------------------------------------------ 837P files ----

const isX12 = (text) => /^\s*ISA/.test(text);

// One table per claim of the file (its verdict's findings), then the intake's errors.
function renderX12(body) {
  const box = $("findings");
  box.replaceChildren();
  body.results.forEach((item) => {
    const findings = item.verdict ? item.verdict.findings : [];
    const what = item.status === "unreadable"
      ? `Unreadable: ${item.error.detail}.`
      : item.status === "malformed"
        ? `Malformed: ${item.claim_id}: ${item.error.detail}.`
        : verdictSummary(item.verdict);
    const caption = `Claim ${item.claim_id || "(no id)"} (segment ${item.index}): ${what}`;
    if (findings.length) {
      box.append(findingsTable(findings, caption));
    } else {
      box.append(el("p", { class: `claim-verdict ${item.status}` }, caption));
    }
  });
  const problems = body.intake_errors;
  if (!problems.length) return;
  const head = el("tr", {}, ...["Segment", "Segment id", "Element", "Claim", "Error",
    "Message"].map((t) => el("th", { scope: "col" }, t)));
  const rows = el("tbody");
  for (const p of problems) {
    rows.append(el("tr", { class: "has-error" },
      el("td", { class: "num" }, String(p.segment)),
      el("td", {}, p.segment_id || ""),
      el("td", {}, p.element || ""),
      el("td", {}, p.claim_id || ""),
      el("td", {}, el("code", {}, p.error)),
      el("td", {}, p.message)));
  }
  box.append(el("table", { id: "intake-errors" },
    el("caption", {}, `Intake errors (${problems.length})`), el("thead", {}, head), rows));
}

function x12Summary(body) {
  const c = body.counts;
  const judged = c.accepted + c.flagged + c.malformed + c.unreadable;
  const parts = [`${c.accepted} accepted`, `${c.flagged} flagged`];
  if (c.malformed) parts.push(`${c.malformed} malformed`);
  if (c.unreadable) parts.push(`${c.unreadable} unreadable`);
  let text = `837P: ${plural(judged, "claim")} judged (${parts.join(", ")})`;
  if (c.rejected) text += `; ${plural(c.rejected, "claim")} rejected by the intake`;
  if (body.intake_errors.length) text += `; ${plural(body.intake_errors.length, "intake error")}`;
  return `${text}.`;
}

async function judgeX12(text) {
  const response = await fetch(api.validateX12, {
    method: "POST",
    headers: { "Content-Type": "application/edi-x12", Accept: "application/json" },
    body: text,
  });
  const body = await response.json();
  $("lines").replaceChildren(); // the lines table edits JSON claims only
  if (!response.ok) {
    setStatus("unreadable", `Not judged (${response.status} ${body.error}): ${body.detail}.`);
    $("findings").replaceChildren();
    return;
  }
  const clean = body.counts.flagged + body.counts.malformed + body.counts.unreadable +
    body.intake_errors.length === 0;
  setStatus(clean ? "accepted" : "flagged", x12Summary(body));
  renderX12(body);
}

// ------------------------------------------------------------------ judging ----

async function judge() {
  const text = $("claim").value;
  const button = $("judge");
  if (isX12(text)) {
    button.disabled = true;
    try {
      await judgeX12(text);
    } catch (error) {
      setStatus("unreadable", `The service did not answer: ${error.message}`);
    } finally {
      button.disabled = false;
    }
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch(api.validate, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: text,
    });
    const body = await response.json();
    const claim = claimOf(readClaim());
    if (response.ok) {
      showVerdict(body, claim);
    } else if (response.status === 422 && body.verdict) {
      setStatus("malformed", `Malformed: ${body.detail}.`);
      renderLines(claim, body.problems || []);
      renderFindings(body.problems || []);
    } else {
      setStatus("unreadable", `Not judged (${response.status} ${body.error}): ${body.detail}.`);
      $("lines").replaceChildren();
      $("findings").replaceChildren();
    }
  } catch (error) {
    setStatus("unreadable", `The service did not answer: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ samples and files ----

async function loadSamples() {
  samples = await getJSON(api.samples);
  const select = $("sample");
  for (const s of samples) select.append(el("option", { value: s.claim_id }, s.label));
}

function loadSample() {
  const chosen = samples.find((s) => s.claim_id === $("sample").value);
  if (!chosen) return;
  writeClaim(chosen.event);
  $("claim").scrollTop = 0;
  setStatus("", `Loaded sample ${chosen.claim_id}; judge it when ready.`);
  $("lines").replaceChildren();
  $("findings").replaceChildren();
  $("claim").focus();
}

async function loadFile() {
  const file = $("file").files[0];
  if (!file) return;
  const text = await file.text();
  if (isX12(text)) {
    $("claim").value = text;
    setStatus("", `Opened ${file.name}, an 837P file; judge its claims when ready.`);
    return;
  }
  const first = text.split("\n").find((line) => line.trim() !== "") || "";
  try {
    writeClaim(JSON.parse(text));
  } catch {
    try {
      writeClaim(JSON.parse(first)); // JSON Lines: the first claim
    } catch {
      $("claim").value = text;
    }
  }
  setStatus("", `Opened ${file.name}; judge it when ready.`);
}

// ------------------------------------------------------------------ the catalogue ----

function renderRules() {
  const words = $("rule-search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const family = $("rule-family").value;
  const body = $("rules").querySelector("tbody");
  body.replaceChildren();
  let shownRules = 0;
  for (const r of catalogue.values()) {
    if (family && r.family !== family) continue;
    const text = [r.rule_id, r.family, r.meaning, r.what_to_do, r.source].join(" ").toLowerCase();
    if (!words.every((w) => text.includes(w))) continue;
    shownRules += 1;
    body.append(el("tr", {},
      el("th", { scope: "row" }, el("code", {}, r.rule_id)),
      el("td", {}, r.family),
      el("td", {}, severity(r.severity)),
      el("td", {}, r.meaning),
      el("td", {}, r.what_to_do),
      el("td", {}, r.source)));
  }
  $("rule-count").textContent = `${shownRules} of ${catalogue.size} rules shown.`;
}

async function loadRules() {
  const rules = await getJSON(api.rules);
  catalogue = new Map(rules.map((r) => [r.rule_id, r]));
  const families = [...new Set(rules.map((r) => r.family))];
  for (const f of families) $("rule-family").append(el("option", { value: f }, f));
  renderRules();
}

async function loadTableInfo() {
  const info = await getJSON(api.table);
  $("table-version").textContent = `Rule table ${info.version} (${info.rules} rules)`;
  $("table-digest").textContent = `Digest sha256 ${info.digest}`;
  const body = $("provenance").querySelector("tbody");
  for (const p of info.provenance) {
    body.append(el("tr", {}, el("td", {}, p.table), el("td", {}, p.source_file),
      el("td", {}, p.release), el("td", {}, String(p.rows))));
  }
}

// ------------------------------------------------------------------ wiring ----

function judgeOnCtrlEnter(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    judge();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("judge").addEventListener("click", judge);
  $("load-sample").addEventListener("click", loadSample);
  $("file").addEventListener("change", loadFile);
  $("claim").addEventListener("keydown", judgeOnCtrlEnter);
  $("lines").addEventListener("keydown", judgeOnCtrlEnter);
  $("rule-search").addEventListener("input", renderRules);
  $("rule-family").addEventListener("change", renderRules);
  Promise.all([loadRules(), loadSamples(), loadTableInfo()])
    .then(() => document.body.setAttribute("data-ready", "true"))
    .catch((error) => setStatus("unreadable", `Could not load the page's data: ${error.message}`));
});
