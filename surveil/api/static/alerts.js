// surveil operator console, the Alerts view: alerts (list, filters, detail, acknowledge),
// the unacknowledged-alert badge in the header, and the alert rules (list, new-rule form,
// enable/disable, delete, test runs to tune a threshold). Viewers read; operators change.

import {
  $, API, ApiError, button, cameraCheckbox, canWrite, clearError, describeAppearance, el,
  fmtDuration, fmtRange, formatTime, getJson, guarded, inputToIso, isoToInput, lazyImage, loadInto,
  plural, refreshZoneTags, request, sameDay, scoreClass, state, withQuery,
} from "./core.js";
import { alertVerdict, ruleCalibrate } from "./feedback.js";

const BADGE_POLL_MS = 15_000;
const BADGE_LIMIT = 100; // enough to count; more shows as "99+"
const ALERTS_PAGE = 100;
const MAX_EXAMPLES = 16; // the API's limit per rule
const TEST_SINCE_MS = 24 * 3600 * 1000; // a test run looks back a day unless told otherwise
const VIEWER_HINT = "Your key is a viewer key: you can read rules and alerts; creating, "
  + "changing, testing rules and acknowledging alerts need the operator role.";
const NEEDS_OPERATOR = "Needs the operator role";

const A = {
  ctx: null, // {currentQuery, searchAppearance, canSearch} from app.js
  rules: [],
  alerts: [],
  seen: new Set(),
  loading: null, // AbortController of the alerts list request in flight
  selected: null, // id of the alert in the detail pane
  detailToken: 0,
  poll: 0,
  polling: false,
  newest: null, // the newest unacknowledged alert id the badge has seen
  draft: { watched: [], skipQuery: false }, // examples of the rule being made
  testRule: null, // id of the rule in the test panel
  testScores: [],
  testReport: null, // {report, since} of the last test run shown
  appearance: null, // the alert in the detail pane's best appearance, once loaded
};

// ---------------------------------------------------------------------------------------
// Life cycle, called by app.js

export function init(ctx) {
  A.ctx = ctx;
  wire();
}

/** Logged in: fill the camera pickers, set role limits, start counting alerts. */
export function enter() {
  fillCameraPickers();
  const write = canWrite();
  $("rules-hint").textContent = write ? "" : VIEWER_HINT;
  const create = $("rule-new");
  create.disabled = !write;
  create.title = write ? "Make a rule from an example crop" : NEEDS_OPERATOR;
  window.clearInterval(A.poll);
  A.poll = window.setInterval(() => refreshBadge(), BADGE_POLL_MS);
  refreshBadge();
}

/** The Alerts view came into sight: fetch what it shows. */
export function shown() {
  guarded(async () => {
    await Promise.all([loadRules(), loadAlerts()]);
    await refreshBadge();
  })();
}

/** Logged out: stop polling and forget everything. */
export function leave() {
  window.clearInterval(A.poll);
  A.poll = 0;
  if (A.loading) A.loading.abort();
  Object.assign(A, {
    rules: [], alerts: [], seen: new Set(), loading: null, selected: null, newest: null,
    draft: { watched: [], skipQuery: false }, testRule: null, testScores: [], testReport: null,
    appearance: null,
  });
  A.detailToken += 1;
  setBadge(0);
  $("rules").replaceChildren();
  $("alerts").replaceChildren();
  $("alerts-summary").textContent = "No alerts loaded.";
  $("alerts-empty").hidden = true;
  $("alerts-more").hidden = true;
  $("alerts-rule").replaceChildren(new Option("all rules", ""));
  $("alerts-camera").replaceChildren(new Option("all cameras", ""));
  $("alerts-unacked").checked = false;
  $("rule-form").reset();
  $("rule-form-panel").hidden = true;
  closeTest();
  closeAlert();
  if ($("confirm-dialog").open) $("confirm-dialog").close();
}

/** The Search view's query changed: the new-rule form offers it as an example. */
export function queryChanged() {
  if (A.ctx && !$("rule-form-panel").hidden) renderExamples();
}

/** "Watch for this" on a sighting: its best appearance becomes an example of a new rule. */
export function watch(appearance) {
  if (!canWrite()) return;
  if (!A.draft.watched.some((a) => a.id === appearance.id)) {
    A.draft.watched.push({
      id: appearance.id, crop_url: appearance.crop_url, camera_id: appearance.camera_id,
      label: appearance.label, ts: appearance.ts,
    });
  }
  if (!$("rf-label").value && appearance.label) $("rf-label").value = appearance.label;
  openForm();
}

/** The time zone switched: everything showing a time says it again, in the new zone. */
export function zoneChanged() {
  if (!A.ctx || !state.key) return;
  renderAlerts();
  renderRules();
  const a = A.selected === null ? null : alertById(A.selected);
  if (a) {
    renderAlertFacts(a);
    if (A.lastDeliveries) renderDeliveries(A.lastDeliveries);
    if (A.keyframe) keyframeCaption(A.keyframe, A.appearance);
  }
  if (A.testReport && A.testRule !== null) renderTest(A.testReport.report, A.testReport.since);
  if (!$("rule-form-panel").hidden) renderExamples();
}

/** Escape in the Alerts view closes the alert detail, else the test panel. */
export function escape() {
  if (!$("alert-detail").hidden) closeAlert();
  else if (!$("rule-test").hidden) closeTest();
}

// ---------------------------------------------------------------------------------------
// The badge: unacknowledged alerts, refreshed every 15 s while logged in

function setBadge(n) {
  const badge = $("alert-badge");
  badge.textContent = n >= BADGE_LIMIT ? `${BADGE_LIMIT - 1}+` : String(n);
  badge.hidden = n === 0;
  badge.title = "";
  $("tab-alerts").setAttribute(
    "aria-label", n ? `Alerts, ${badge.textContent} unacknowledged` : "Alerts",
  );
}

async function refreshBadge() {
  if (!state.key || A.polling) return;
  A.polling = true;
  const { key } = state;
  try {
    const body = await getJson(withQuery(`${API}/alerts`, {
      acknowledged: "false", limit: BADGE_LIMIT,
    }));
    if (state.key !== key) return;
    setBadge(body.alerts.length);
    const newest = body.alerts.reduce((m, a) => Math.max(m, a.id), 0);
    const arrived = A.newest !== null && newest > A.newest;
    A.newest = newest;
    // New alerts while the list is on screen: show them (a failure here stays quiet too).
    if (arrived && state.view === "alerts") await loadAlerts().catch(() => {});
  } catch (err) {
    // A poll failing is no reason to cover the screen in errors; the badge says it.
    if (state.key === key) $("alert-badge").title = `Could not count alerts: ${err.message}`;
  } finally {
    A.polling = false;
  }
}

// ---------------------------------------------------------------------------------------
// Alerts: list and filters

function fillCameraPickers() {
  const select = $("alerts-camera");
  const keep = select.value;
  select.replaceChildren(new Option("all cameras", ""));
  for (const cam of state.cameras) select.append(new Option(cam.id, cam.id));
  select.value = keep;
  const boxes = $("rf-cameras");
  boxes.replaceChildren();
  if (!state.cameras.length) boxes.append(el("p", "muted small", "The catalog has no cameras yet."));
  for (const cam of state.cameras) {
    const named = cam.name && cam.name !== cam.id;
    const details = named ? [el("span", "muted small", ` ${cam.name}`)] : [];
    boxes.append(cameraCheckbox(cam, ...details));
  }
}

async function loadAlerts({ more = false } = {}) {
  const params = {
    rule_id: $("alerts-rule").value,
    camera: $("alerts-camera").value,
    acknowledged: $("alerts-unacked").checked ? "false" : "",
    limit: ALERTS_PAGE,
  };
  if (more && A.alerts.length) params.until = A.alerts[A.alerts.length - 1].ts;
  if (A.loading) A.loading.abort();
  const ctl = new AbortController();
  A.loading = ctl;
  $("alerts-main").setAttribute("aria-busy", "true");
  try {
    const body = await getJson(withQuery(`${API}/alerts`, params), { signal: ctl.signal });
    if (A.loading !== ctl) return;
    if (!more) {
      A.alerts = [];
      A.seen = new Set();
    }
    const fresh = body.alerts.filter((a) => !A.seen.has(a.id));
    for (const a of fresh) {
      A.seen.add(a.id);
      A.alerts.push(a);
    }
    renderAlerts();
    $("alerts-more").hidden = body.alerts.length < ALERTS_PAGE || !fresh.length;
    if (A.selected !== null && !A.seen.has(A.selected)) closeAlert();
  } catch (err) {
    if (err.name !== "AbortError") throw err;
  } finally {
    if (A.loading === ctl) {
      A.loading = null;
      $("alerts-main").removeAttribute("aria-busy");
    }
  }
}

function filtered() {
  return Boolean($("alerts-rule").value || $("alerts-camera").value || $("alerts-unacked").checked);
}

function renderAlerts() {
  const list = $("alerts");
  const focused = document.activeElement && list.contains(document.activeElement)
    ? [document.activeElement.closest(".alert")?.dataset.id, document.activeElement.className]
    : null;
  const frag = document.createDocumentFragment();
  const write = canWrite();
  for (const a of A.alerts) {
    const li = el("li", "alert");
    li.dataset.id = String(a.id);
    li.dataset.rule = String(a.rule_id);
    li.dataset.camera = a.camera_id;
    li.classList.toggle("acked", a.acknowledged);
    li.classList.toggle("selected", a.id === A.selected);
    const open = button("", "alert-open", {
      label: `Open alert: ${a.rule_name} on ${a.camera_id}, ${a.label}, `
        + `${fmtRange(a.ts, a.last_ts)}, score ${a.score.toFixed(2)}`
        + `${a.acknowledged ? ", acknowledged" : ", not acknowledged"}`,
    });
    open.append(lazyImage(a.crop_url, "thumb", `Crop of ${a.label} on ${a.camera_id}`));
    open.append(el("span", `score ${scoreClass(a.score)}`, a.score.toFixed(2)));
    const info = el("span", "s-info");
    const line1 = el("span", "s-line1");
    line1.append(
      el("span", "a-rule", a.rule_name),
      a.acknowledged
        ? el("span", "a-state a-acked", `✓ ${a.acknowledged_by || "acknowledged"}`)
        : el("span", "a-state a-new", "new"),
    );
    const where = el("span", "s-line1");
    where.append(
      el("span", "s-camera", a.camera_id),
      el("span", "s-label", a.label),
      el("span", "s-count muted", plural(a.hits, "hit")),
    );
    const t0 = Date.parse(a.ts);
    const t1 = Date.parse(a.last_ts);
    const line2 = el("span", "s-line2 muted");
    line2.append(
      el("span", "a-first", formatTime(a.ts)),
      el("span", "a-last", `→ ${sameDay(t0, t1) ? formatTime(t1, "time") : formatTime(t1)}`),
      el("span", "a-duration", `(${fmtDuration(t1 - t0)})`),
    );
    info.append(line1, where, line2);
    open.append(info);
    li.append(open);
    if (!a.acknowledged) {
      const ack = button("Acknowledge", "btn btn-small ack", {
        title: write ? `Mark this alert on ${a.camera_id} seen` : NEEDS_OPERATOR,
      });
      ack.disabled = !write;
      li.append(ack);
    }
    frag.append(li);
  }
  list.replaceChildren(frag);
  if (focused && focused[0]) {
    const again = list.querySelector(`.alert[data-id="${focused[0]}"] .alert-open`);
    if (again) again.focus();
  }
  const open = A.alerts.filter((a) => !a.acknowledged).length;
  const summary = $("alerts-summary");
  if (!A.alerts.length) {
    summary.textContent = filtered() ? "No alerts match the filters." : "No alerts yet.";
  } else {
    summary.replaceChildren(
      el("strong", "", plural(A.alerts.length, "alert")),
      el("span", "muted", ` · ${open} unacknowledged${filtered() ? " · filtered" : ""}`),
    );
  }
  $("alerts-empty").hidden = A.alerts.length > 0;
}

function alertById(id) {
  return A.alerts.find((a) => a.id === id);
}

// ---------------------------------------------------------------------------------------
// Alert detail: crop, keyframe with the box, facts, deliveries; acknowledge, find similar

async function openAlert(id) {
  const a = alertById(id);
  if (!a) return;
  A.selected = id;
  for (const li of document.querySelectorAll("#alerts .alert")) {
    li.classList.toggle("selected", Number(li.dataset.id) === id);
  }
  const token = ++A.detailToken;
  const pane = $("alert-detail");
  pane.hidden = false;
  $("alerts-main").classList.add("with-detail");
  $("alert-detail-title").textContent = `Alert · ${a.camera_id}`;
  A.appearance = null;
  A.keyframe = null;
  A.lastDeliveries = null;
  const crop = $("alert-crop");
  crop.removeAttribute("src");
  crop.alt = `Crop of the alert's best hit, ${a.label} on ${a.camera_id}`;
  loadInto(crop, a.crop_url);
  const frame = $("alert-keyframe");
  frame.removeAttribute("src");
  frame.dataset.src = "";
  frame.classList.add("loading");
  $("alert-keyframe-caption").textContent = "Loading the keyframe…";
  renderAlertFacts(a);
  $("alert-deliveries").replaceChildren(el("p", "muted small", "Loading deliveries…"));

  const [detail, appearance] = await Promise.all([
    getJson(`${API}/alerts/${a.id}`),
    getJson(`${API}/appearances/${a.appearance_id}`).catch((err) => ({ error: err })),
  ]);
  if (token !== A.detailToken) return;
  A.lastDeliveries = detail.deliveries;
  renderDeliveries(detail.deliveries);
  if (!appearance.error) {
    A.appearance = appearance;
    renderAlertFacts(a); // "Find similar" now says when the best hit was seen
  }
  if (appearance.error) {
    frame.classList.remove("loading");
    $("alert-keyframe-caption").textContent = `No keyframe: ${appearance.error.message}`;
    return;
  }
  // Ask for the keyframe first: one without a stored image has image_url null (no 404).
  const keyframe = await getJson(`${API}/keyframes/${appearance.keyframe_id}`);
  if (token !== A.detailToken) return;
  A.keyframe = keyframe;
  if (!keyframe.image_url) {
    frame.classList.remove("loading");
    keyframeCaption(keyframe, appearance);
    return;
  }
  const [x1, y1, x2, y2] = appearance.bbox.map((v) => Math.max(0, Math.round(v)));
  const box = [x1, y1, Math.max(x2, x1 + 1), Math.max(y2, y1 + 1)].join(",");
  frame.alt = `The ${keyframe.camera_id} keyframe of ${formatTime(keyframe.ts, "datetime-ms")} `
    + `with the ${appearance.label} boxed`;
  loadInto(frame, `${keyframe.image_url}?box=${box}`);
  keyframeCaption(keyframe, appearance);
}

function keyframeCaption(keyframe, appearance) {
  $("alert-keyframe-caption").textContent = keyframe.image_url
    ? `${formatTime(keyframe.ts, "datetime-ms")} · frame ${keyframe.frame_index}`
      + ` · confidence ${appearance.confidence.toFixed(2)}`
    : `The keyframe of ${formatTime(keyframe.ts, "datetime-ms")} has no stored image.`;
}

function renderAlertFacts(a) {
  const meta = $("alert-meta");
  meta.replaceChildren();
  const rows = [
    ["Rule", a.rule_name],
    ["Camera", a.camera_id],
    ["Label", a.label],
    ["Score", a.score.toFixed(3)],
    ["First seen", formatTime(a.ts, "datetime-ms")],
    ["Last seen", formatTime(a.last_ts, "datetime-ms")],
    ["Hits", String(a.hits)],
    ["Raised", formatTime(a.created_at)],
    ["Acknowledged", a.acknowledged
      ? `by ${a.acknowledged_by || "?"}, ${formatTime(a.acknowledged_at)}`
      : "not yet"],
  ];
  for (const [k, v] of rows) {
    const dd = el("dd", "", v);
    if (k === "Acknowledged") dd.id = "alert-ack-state";
    meta.append(el("dt", "", k), dd);
  }
  const ack = $("alert-ack");
  const write = canWrite();
  ack.dataset.id = String(a.id);
  ack.disabled = a.acknowledged || !write;
  ack.textContent = a.acknowledged ? "Acknowledged" : "Acknowledge";
  ack.title = write ? "" : NEEDS_OPERATOR;
  alertVerdict(a);
  const similar = $("alert-similar");
  similar.dataset.id = String(a.id);
  similar.disabled = !A.ctx.canSearch();
  const best = A.appearance && A.appearance.id === a.appearance_id ? A.appearance : null;
  similar.textContent = `Find similar to ${describeAppearance({
    label: a.label, camera_id: a.camera_id, ts: best ? best.ts : null,
  })}`;
  similar.title = A.ctx.canSearch() ? "Search every camera for this appearance" : NEEDS_OPERATOR;
  $("alert-hint").textContent = write ? "" : "Acknowledging and searching need the operator role.";
}

function renderDeliveries(deliveries) {
  const box = $("alert-deliveries");
  if (!deliveries.length) {
    box.replaceChildren(el("p", "muted small", "No webhooks: this alert was logged only."));
    return;
  }
  const table = el("table", "deliveries-table");
  const head = el("thead");
  const hr = el("tr");
  for (const h of ["#", "Time", "Result", "Took"]) {
    const th = el("th", "", h);
    th.scope = "col";
    hr.append(th);
  }
  head.append(hr);
  table.append(head);
  for (const d of deliveries) {
    const body = el("tbody", "delivery");
    body.dataset.state = d.state;
    const top = el("tr", "delivery-head");
    const th = el("th", "");
    th.colSpan = 4;
    th.scope = "rowgroup";
    th.append(el("span", "delivery-url mono", d.url), " ", el("span", `d-state d-${d.state}`, d.state));
    if (d.delivered_at) th.append(el("span", "muted small", ` at ${formatTime(d.delivered_at)}`));
    top.append(th);
    body.append(top);
    if (!d.attempts.length) {
      const tr = el("tr", "attempt");
      const td = el("td", "muted small", "not tried yet");
      td.colSpan = 4;
      tr.append(td);
      body.append(tr);
    }
    d.attempts.forEach((t, i) => {
      const tr = el("tr", "attempt");
      const ok = t.status !== null && t.status >= 200 && t.status < 300;
      const result = t.status !== null ? `HTTP ${t.status}` : "no answer";
      const why = t.error && t.error !== result ? `${result}: ${t.error}` : result;
      tr.append(
        el("td", "mono", String(i + 1)),
        el("td", "d-time", formatTime(t.ts)),
        el("td", ok ? "ok" : "failed", why),
        el("td", "mono", `${t.seconds.toFixed(2)} s`),
      );
      body.append(tr);
    });
    table.append(body);
  }
  box.replaceChildren(table);
}

function closeAlert() {
  const pane = $("alert-detail");
  A.selected = null;
  A.detailToken += 1;
  for (const li of document.querySelectorAll("#alerts .alert.selected")) li.classList.remove("selected");
  if (pane.hidden) return;
  pane.hidden = true;
  $("alerts-main").classList.remove("with-detail");
  for (const id of ["alert-crop", "alert-keyframe"]) {
    $(id).removeAttribute("src");
    $(id).dataset.src = "";
  }
}

async function acknowledge(id, { from } = {}) {
  const updated = await getJson(`${API}/alerts/${id}/ack`, { method: "POST" });
  const i = A.alerts.findIndex((a) => a.id === id);
  if (i >= 0) A.alerts[i] = updated;
  renderAlerts();
  if (A.selected === id) renderAlertFacts(updated);
  if (from === "detail") $("alert-detail-close").focus();
  else {
    const row = document.querySelector(`#alerts .alert[data-id="${id}"] .alert-open`);
    if (row) row.focus();
  }
  await refreshBadge();
}

// ---------------------------------------------------------------------------------------
// Rules: list, enable/disable, delete, filter alerts by one

async function loadRules() {
  const body = await getJson(`${API}/rules`);
  A.rules = body.rules;
  renderRules();
}

function ruleById(id) {
  return A.rules.find((r) => r.id === id);
}

function describeRule(r) {
  const parts = [
    r.cameras.length ? r.cameras.join(", ") : "all cameras",
    r.labels.length ? r.labels.join(", ") : `any ${r.space === "person" ? "person" : "object"}`,
    `every ${r.interval} s`,
    `cooldown ${r.cooldown} s`,
  ];
  if (r.webhooks.length) parts.push(`${plural(r.webhooks.length, "webhook")}${r.has_secret ? " (signed)" : ""}`);
  return parts.join(" · ");
}

function renderRules({ focus } = {}) {
  const list = $("rules");
  const write = canWrite();
  const frag = document.createDocumentFragment();
  for (const r of A.rules) {
    const li = el("li", "rule");
    li.dataset.id = String(r.id);
    li.dataset.enabled = String(r.enabled);
    li.classList.toggle("off", !r.enabled);
    li.classList.toggle("testing", r.id === A.testRule);
    const head = el("div", "rule-head");
    head.append(
      el("span", "rule-name", r.name),
      el("span", `pill ${r.enabled ? "pill-on" : "pill-off"}`, r.enabled ? "enabled" : "disabled"),
      el("span", "rule-threshold mono", `≥ ${r.threshold.toFixed(2)}`),
    );
    head.lastChild.title = "Threshold: the cosine similarity an appearance must reach";
    const meta = el("p", "rule-meta muted small", describeRule(r));
    const examples = el("div", "rule-examples");
    r.examples.forEach((ex, i) => {
      examples.append(lazyImage(ex.crop_url, "rule-example", `Example ${i + 1} of ${r.name}`));
    });
    const actions = el("div", "rule-actions");
    const toggle = button(r.enabled ? "Disable" : "Enable", "btn btn-small toggle", {
      title: write ? "" : NEEDS_OPERATOR,
      label: `${r.enabled ? "Disable" : "Enable"} rule ${r.name}`,
    });
    const test = button("Test", "btn btn-small test", {
      title: write ? "What it would have raised on past footage" : NEEDS_OPERATOR,
      label: `Test rule ${r.name}`,
    });
    const show = button("Alerts", "btn btn-small show-alerts", {
      title: "Show only this rule's alerts", label: `Show alerts of rule ${r.name}`,
    });
    const del = button("Delete", "btn btn-small btn-ghost delete", {
      title: write ? "" : NEEDS_OPERATOR, label: `Delete rule ${r.name}`,
    });
    for (const b of [toggle, test, del]) b.disabled = !write;
    actions.append(toggle, test, show, del);
    ruleCalibrate(actions, r, loadRules);
    li.append(head, meta, examples, actions);
    frag.append(li);
  }
  if (!A.rules.length) {
    frag.append(el("li", "rules-empty muted small", write
      ? "No rules yet. Choose an example crop in the Search view (or press “Watch for this” on a sighting), then New rule."
      : "No rules yet."));
  }
  list.replaceChildren(frag);
  if (focus) {
    const again = list.querySelector(`.rule[data-id="${focus.id}"] .${focus.cls}`);
    if (again) again.focus();
  }
  // The rule filter of the alert list follows the rules.
  const select = $("alerts-rule");
  const keep = select.value;
  select.replaceChildren(new Option("all rules", ""));
  for (const r of A.rules) select.append(new Option(r.name, String(r.id)));
  select.value = A.rules.some((r) => String(r.id) === keep) ? keep : "";
  if (A.testRule !== null && !ruleById(A.testRule)) closeTest();
}

function replaceRule(rule) {
  const i = A.rules.findIndex((r) => r.id === rule.id);
  if (i >= 0) A.rules[i] = rule;
  else A.rules.push(rule);
}

async function toggleRule(id) {
  const r = ruleById(id);
  if (!r) return;
  const updated = await getJson(`${API}/rules/${id}`, { method: "PATCH", json: { enabled: !r.enabled } });
  replaceRule(updated);
  renderRules({ focus: { id, cls: "toggle" } });
}

function confirmDialog({ title, text, ok }) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function deleteRule(id) {
  const r = ruleById(id);
  if (!r) return;
  const yes = await confirmDialog({
    title: `Delete rule “${r.name}”?`,
    text: "Its examples and every alert it raised are deleted too. This cannot be undone.",
    ok: "Delete rule",
  });
  if (!yes) return;
  const index = A.rules.indexOf(r);
  await request(`${API}/rules/${id}`, { method: "DELETE" });
  A.rules = A.rules.filter((x) => x.id !== id);
  if (A.testRule === id) closeTest();
  renderRules();
  const next = A.rules[Math.min(index, A.rules.length - 1)];
  const target = next
    ? document.querySelector(`#rules .rule[data-id="${next.id}"] .toggle`)
    : $("rule-new");
  if (target && !target.disabled) target.focus();
  await loadAlerts(); // its alerts went with it
  await refreshBadge();
}

// ---------------------------------------------------------------------------------------
// Test a rule over past footage: what it would have raised, the best scores seen

function openTest(id) {
  const r = ruleById(id);
  if (!r) return;
  A.testRule = id;
  for (const li of document.querySelectorAll("#rules .rule")) {
    li.classList.toggle("testing", Number(li.dataset.id) === id);
  }
  $("rule-test").hidden = false;
  $("rule-test-title").textContent = `Test: ${r.name}`;
  if (!$("rt-since").value) $("rt-since").value = isoToInput(defaultSince(r));
  refreshZoneTags();
  $("rt-threshold").value = String(r.threshold);
  $("rt-summary").textContent = "";
  $("rt-scores").replaceChildren();
  $("rt-alerts").replaceChildren();
  $("rt-since").focus();
  return runTest();
}

/** A day before the newest footage of the rule's cameras (or before now, if newer). */
function defaultSince(rule) {
  let end = Date.now();
  const cams = state.cameras.filter((c) => !rule.cameras.length || rule.cameras.includes(c.id));
  const newest = cams.reduce((m, c) => (c.last_ts ? Math.max(m, Date.parse(c.last_ts)) : m), -Infinity);
  if (Number.isFinite(newest)) end = Math.min(end, newest);
  return new Date(end - TEST_SINCE_MS);
}

async function runTest() {
  const id = A.testRule;
  if (id === null) return;
  const since = inputToIso($("rt-since").value);
  if (!since) throw new ApiError(0, "invalid_input", "Give the time to test from (Since).");
  clearError();
  $("rt-run").disabled = true;
  $("rt-summary").textContent = "Testing…";
  try {
    const report = await getJson(`${API}/rules/${id}/test`, { method: "POST", json: { since } });
    if (A.testRule !== id) return;
    A.testReport = { report, since };
    renderTest(report, since);
  } catch (err) {
    if (A.testRule === id) $("rt-summary").textContent = "The test failed (see the message above).";
    throw err;
  } finally {
    $("rt-run").disabled = false;
  }
}

function renderTest(report, since) {
  const r = ruleById(report.rule_id);
  const threshold = r ? r.threshold : Number($("rt-threshold").value);
  $("rt-summary").replaceChildren(
    el("strong", "", `${plural(report.new_alerts, "alert")} would have been raised`),
    el("span", "muted", ` · ${plural(report.scanned, "appearance")} scanned since `
      + `${formatTime(since)}, ${plural(report.hits, "hit")} at ≥ ${threshold.toFixed(2)}`
      + " · nothing stored, nobody notified"),
  );
  A.testScores = report.top_scores;
  renderScores();
  const list = $("rt-alerts");
  list.replaceChildren();
  for (const a of report.alerts) {
    const li = el("li", "rt-alert");
    li.dataset.camera = a.camera_id;
    li.append(
      lazyImage(`${API}/appearances/${a.appearance_id}/crop.jpg`, "rt-thumb", `Crop of the best hit, ${a.label} on ${a.camera_id}`),
      el("span", `score ${scoreClass(a.score)}`, a.score.toFixed(2)),
    );
    const info = el("span", "s-info");
    const line1 = el("span", "s-line1");
    line1.append(el("span", "s-camera", a.camera_id), el("span", "s-label", a.label),
      el("span", "muted small", plural(a.hits, "hit")));
    info.append(line1, el("span", "s-line2 muted", fmtRange(a.ts, a.last_ts)));
    li.append(info);
    list.append(li);
  }
}

/** The best scores as chips, marked against the threshold being considered. */
function renderScores() {
  const box = $("rt-scores");
  box.replaceChildren();
  if (!A.testScores.length) {
    box.append(el("span", "muted small", "No appearances in that time."));
    return;
  }
  const t = Number($("rt-threshold").value);
  const valid = $("rt-threshold").value !== "" && Number.isFinite(t);
  box.append(el("span", "rt-scores-label muted small", "Best scores:"));
  let passing = 0;
  for (const s of A.testScores) {
    const pass = valid && s >= t;
    if (pass) passing += 1;
    const chip = el("span", `rt-score ${pass ? "pass" : "miss"}`, s.toFixed(3));
    chip.title = pass ? "reaches the threshold" : "below the threshold";
    box.append(chip);
  }
  if (valid) {
    box.append(el("span", "muted small", ` ${passing} of ${A.testScores.length} reach ${t.toFixed(2)}`));
  }
}

async function saveThreshold() {
  const id = A.testRule;
  const input = $("rt-threshold");
  const t = Number(input.value);
  if (input.value === "" || input.validity.badInput || !(t >= -1 && t <= 1)) {
    throw new ApiError(0, "invalid_input", "The threshold is a cosine similarity between -1 and 1.");
  }
  const updated = await getJson(`${API}/rules/${id}`, { method: "PATCH", json: { threshold: t } });
  replaceRule(updated);
  renderRules();
  await runTest();
}

function closeTest() {
  A.testRule = null;
  A.testScores = [];
  A.testReport = null;
  $("rule-test").hidden = true;
  for (const li of document.querySelectorAll("#rules .rule.testing")) li.classList.remove("testing");
}

// ---------------------------------------------------------------------------------------
// New rule: the form, its examples (the Search view's crop and watched sightings)

function openForm() {
  const panel = $("rule-form-panel");
  const wasHidden = panel.hidden;
  panel.hidden = false;
  $("rule-new").hidden = true;
  renderExamples();
  if (wasHidden) panel.closest(".sidebar-scroll").scrollTop = 0;
  $("rf-name").focus();
}

function closeForm() {
  $("rule-form").reset();
  A.draft = { watched: [], skipQuery: false };
  $("rule-form-panel").hidden = true;
  $("rule-new").hidden = false;
  $("rf-hint").textContent = "";
  $("rule-new").focus();
}

/** The Search view's query as an example: an image, a stored appearance, or a drawn box. */
function queryExample() {
  const q = A.ctx.currentQuery();
  if (!q || A.draft.skipQuery) return null;
  return q;
}

function examples() {
  const q = queryExample();
  const ids = new Set(A.draft.watched.map((a) => a.id));
  const out = [];
  if (q && !(q.kind === "appearance" && ids.has(q.id))) out.push({ from: "query", q });
  for (const a of A.draft.watched) out.push({ from: "watch", a });
  return out;
}

function renderExamples() {
  const list = $("rf-examples");
  list.replaceChildren();
  const items = examples();
  for (const item of items) {
    const li = el("li", "rf-example");
    let text;
    if (item.from === "query") {
      const { q } = item;
      li.dataset.kind = q.kind;
      if (q.kind === "image") {
        const img = el("img", "rf-thumb");
        img.alt = "";
        img.src = q.url;
        li.append(img);
        text = `Search crop: ${q.name}`;
      } else if (q.kind === "appearance") {
        li.dataset.id = String(q.id);
        const img = el("img", "rf-thumb");
        img.alt = "";
        loadInto(img, q.cropUrl);
        li.append(img);
        text = `Search example: ${describeAppearance({ label: q.label, camera_id: q.camera, ts: q.ts })}`;
      } else {
        li.append(boxCanvas(q));
        text = `A box on the ${q.keyframe.camera_id} keyframe of ${formatTime(q.keyframe.ts, "datetime")}`;
      }
    } else {
      const { a } = item;
      li.dataset.kind = "appearance";
      li.dataset.id = String(a.id);
      const img = el("img", "rf-thumb");
      img.alt = "";
      loadInto(img, a.crop_url);
      li.append(img);
      text = `Watched: ${describeAppearance(a)}`;
    }
    li.append(el("span", "rf-example-text small", text));
    const remove = button("✕", "btn btn-ghost btn-small rf-remove", { label: `Remove example: ${text}` });
    remove.addEventListener("click", () => {
      if (item.from === "query") A.draft.skipQuery = true;
      else A.draft.watched = A.draft.watched.filter((a) => a.id !== item.a.id);
      renderExamples();
      $("rf-name").focus();
    });
    li.append(remove);
    list.append(li);
  }
  const hint = $("rf-examples-hint");
  hint.replaceChildren();
  if (!items.length) {
    hint.append("No examples yet: choose a crop or draw a box in the Search view, or press "
      + "“Watch for this” on a sighting there.");
  } else {
    hint.append("The rule scores each new appearance against its best-matching example.");
  }
  if (A.draft.skipQuery && A.ctx.currentQuery()) {
    const again = button("Use the Search view's example", "btn btn-small btn-ghost");
    again.addEventListener("click", () => {
      A.draft.skipQuery = false;
      renderExamples();
    });
    hint.append(" ", again);
  }
  const create = $("rf-create");
  create.disabled = !items.length || !canWrite();
  $("rf-hint").textContent = items.length > MAX_EXAMPLES
    ? `A rule takes at most ${MAX_EXAMPLES} examples; remove some.` : "";
}

function boxCanvas({ image, box }) {
  const [x1, y1, x2, y2] = box;
  const scale = 48 / Math.max(x2 - x1, y2 - y1);
  const canvas = el("canvas", "rf-thumb");
  canvas.width = Math.max(1, Math.round((x2 - x1) * scale));
  canvas.height = Math.max(1, Math.round((y2 - y1) * scale));
  canvas.getContext("2d").drawImage(image, x1, y1, x2 - x1, y2 - y1, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** A box drawn on a keyframe, cut out at full resolution as a JPEG file. */
function boxBlob({ image, box }) {
  const [x1, y1, x2, y2] = box;
  const canvas = document.createElement("canvas");
  canvas.width = x2 - x1;
  canvas.height = y2 - y1;
  canvas.getContext("2d").drawImage(image, x1, y1, x2 - x1, y2 - y1, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the box could not be cut out"))), "image/jpeg", 0.92);
  });
}

function numberField(form, id, name) {
  const input = $(id);
  const label = input.labels[0].textContent.trim();
  if (input.validity.badInput) throw new ApiError(0, "invalid_input", `${label} is not a number.`);
  if (input.value === "") return;
  const v = Number(input.value);
  if ((input.min !== "" && v < Number(input.min)) || (input.max !== "" && v > Number(input.max))) {
    throw new ApiError(0, "invalid_input", `${label} must be between ${input.min} and ${input.max}.`);
  }
  form.append(name, input.value);
}

async function createRule() {
  if (!canWrite()) return;
  clearError();
  const form = new FormData();
  const name = $("rf-name").value.trim();
  if (!name) {
    $("rf-name").focus();
    throw new ApiError(0, "invalid_input", "Give the rule a name.");
  }
  form.append("name", name);
  if ($("rf-threshold").value === "") throw new ApiError(0, "invalid_input", "Give a threshold (0.75 is a fair start).");
  numberField(form, "rf-threshold", "threshold");
  for (const box of document.querySelectorAll('#rf-cameras input[name="camera"]:checked')) {
    form.append("camera", box.value);
  }
  for (const label of $("rf-label").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    form.append("label", label);
  }
  numberField(form, "rf-interval", "interval");
  numberField(form, "rf-cooldown", "cooldown");
  for (const url of $("rf-webhooks").value.split("\n").map((s) => s.trim()).filter(Boolean)) {
    if (!/^https?:\/\/\S+$/.test(url)) {
      throw new ApiError(0, "invalid_input", `Webhook "${url}" must be an http:// or https:// URL.`);
    }
    form.append("webhook", url);
  }
  const secret = $("rf-secret").value;
  if (secret) {
    if (secret.length < 16) {
      throw new ApiError(0, "invalid_input", "The signing secret needs at least 16 characters.");
    }
    form.append("secret", secret);
  }
  const items = examples();
  if (!items.length) throw new ApiError(0, "invalid_input", "Give the rule at least one example.");
  if (items.length > MAX_EXAMPLES) {
    throw new ApiError(0, "invalid_input", `A rule takes at most ${MAX_EXAMPLES} examples.`);
  }
  for (const item of items) {
    if (item.from === "watch") form.append("example_appearance_id", String(item.a.id));
    else if (item.q.kind === "image") form.append("example", item.q.blob, item.q.name);
    else if (item.q.kind === "appearance") form.append("example_appearance_id", String(item.q.id));
    else form.append("example", await boxBlob(item.q), `keyframe-${item.q.keyframe.id}-box.jpg`);
  }

  const create = $("rf-create");
  create.disabled = true;
  create.textContent = "Creating…";
  try {
    const rule = await getJson(`${API}/rules`, { method: "POST", body: form });
    replaceRule(rule);
    closeForm();
    renderRules();
    const li = document.querySelector(`#rules .rule[data-id="${rule.id}"]`);
    if (li) {
      li.classList.add("fresh");
      li.scrollIntoView({ block: "nearest" });
      li.querySelector(".toggle").focus();
    }
  } finally {
    create.textContent = "Create rule";
    if (!$("rule-form-panel").hidden) renderExamples();
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  // Alerts: filters, paging, rows, detail.
  for (const id of ["alerts-rule", "alerts-camera", "alerts-unacked"]) {
    $(id).addEventListener("change", guarded(() => loadAlerts()));
  }
  $("alerts-refresh").addEventListener("click", guarded(async () => {
    clearError();
    await Promise.all([loadRules(), loadAlerts()]);
    await refreshBadge();
  }));
  $("alerts-more").addEventListener("click", guarded(() => loadAlerts({ more: true })));
  $("alerts").addEventListener("click", (event) => {
    const li = event.target.closest(".alert");
    if (!li) return;
    const id = Number(li.dataset.id);
    if (event.target.closest(".ack")) guarded(acknowledge)(id);
    else if (event.target.closest(".alert-open")) guarded(openAlert)(id);
  });
  $("alert-detail-close").addEventListener("click", () => {
    const id = A.selected;
    closeAlert();
    const row = document.querySelector(`#alerts .alert[data-id="${id}"] .alert-open`);
    if (row) row.focus();
  });
  $("alert-ack").addEventListener("click", guarded(() => acknowledge(Number($("alert-ack").dataset.id), { from: "detail" })));
  $("alert-similar").addEventListener("click", guarded(() => {
    const a = alertById(Number($("alert-similar").dataset.id));
    if (!a) return undefined;
    const best = A.appearance && A.appearance.id === a.appearance_id ? A.appearance : null;
    return A.ctx.searchAppearance({
      id: a.appearance_id, crop_url: a.crop_url, camera_id: a.camera_id, label: a.label,
      ts: best ? best.ts : a.ts,
    });
  }));

  // Rules.
  $("rule-new").addEventListener("click", () => openForm());
  $("rules").addEventListener("click", (event) => {
    const li = event.target.closest(".rule");
    if (!li) return;
    const id = Number(li.dataset.id);
    if (event.target.closest(".toggle")) guarded(toggleRule)(id);
    else if (event.target.closest(".test")) guarded(openTest)(id);
    else if (event.target.closest(".delete")) guarded(deleteRule)(id);
    else if (event.target.closest(".show-alerts")) {
      $("alerts-rule").value = String(id);
      guarded(() => loadAlerts())();
    }
  });
  $("rule-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(createRule)();
  });
  $("rf-cancel").addEventListener("click", closeForm);
  // Correcting the form takes away the message about what was wrong with it.
  $("rule-form").addEventListener("input", () => {
    if (!$("error").hidden) clearError();
  });

  // Test runs.
  $("rt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(runTest)();
  });
  $("rt-threshold").addEventListener("input", renderScores);
  $("rt-threshold").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      guarded(saveThreshold)();
    }
  });
  $("rt-save").addEventListener("click", guarded(saveThreshold));
  $("rt-close").addEventListener("click", () => {
    const id = A.testRule;
    closeTest();
    const b = document.querySelector(`#rules .rule[data-id="${id}"] .test`);
    if (b) b.focus();
  });

  // Count again as soon as the page is looked at again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.key) refreshBadge();
  });
}
