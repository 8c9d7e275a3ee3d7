// surveil operator console: plain ES modules, no build step, no dependencies.
// app.js: log in, the Search view (query, filters, timeline, list, detail, keyframes) and
// the header's view tabs; core.js holds HTTP, images and formatting; alerts.js the Alerts
// view (alerts, their detail, and the alert rules); cameras.js the Cameras view (health).

import {
  $, API, ApiError, authedImageUrl, button, cameraCheckbox, canWrite, clearError, clearImageCache,
  describeAppearance, el, errorFrom, fmtDuration, fmtRange, formatTime, getJson, guarded, hooks,
  imageFileProblem, inputToIso, isoToInput, lazyImage, loadInto, localZoneName, onTimeZoneChange,
  plural, refreshZoneTags, request, rezoneInput, sameDay, scoreClass, setTimeZone, state, svg,
  timeZone, withQuery, zoneLabel, zoneParts, zoneTime,
} from "./core.js";
import * as alerts from "./alerts.js";
import * as cameras from "./cameras.js";
import * as storage from "./storage.js";
import * as feedback from "./feedback.js";

const KEY_STORAGE = "surveil.key";
const KEYFRAME_PAGE = 24;
/** The date fields, typed in the zone shown (each carries a .zone-tag saying which). */
const DATE_INPUTS = ["kf-time", "since", "until", "rt-since"];

Object.assign(state, {
  /** {kind: "image", blob, name, url} | {kind: "appearance", id, cropUrl, camera, label, ts}
   *  | {kind: "track", id, cropUrl, camera, label, ts, crops}
   *  | {kind: "keyframe_box", keyframe, box, image} */
  query: null,
  sightings: [],
  // the last search's cut flag, why it was cut ("limit" | "max_candidates"), and warnings
  result: { truncated: false, reason: null, warnings: [] },
  path: null, // the last search's path across cameras ({legs, hops, overlapping})
  zoom: null, // the timeline's visible {t0, t1} when zoomed in; null shows everything
  drag: null, // a pan or Shift+drag range on the timeline, while the button is down
  dragged: false, // the click ending a drag is no click on a mark
  timelineGeo: null, // {left, plotW, t0, t1} of the timeline as last drawn
  generation: 0,
  selected: -1,
  searching: null, // AbortController of the search in flight
  keyframes: { camera: null, items: [], seen: new Set() },
  dialog: null, // {keyframe, image, box, drag}
  view: "search",
});

function bestAppearance(sighting) {
  let best = sighting.appearances[0];
  for (const a of sighting.appearances) if (a.score > best.score) best = a;
  return best;
}

// ---------------------------------------------------------------------------------------
// Log in / out

const canSearch = canWrite;

function showLogin(message, { keepKey = false } = {}) {
  $("app-view").hidden = true;
  $("whoami").hidden = true;
  $("tabs").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.textContent = message || "";
  err.hidden = !message;
  const input = $("key");
  if (!keepKey) input.value = "";
  input.focus();
  input.select();
}

function sessionExpired(err) {
  logout();
  showLogin(`Your key is no longer accepted (${err.message}). Log in again.`);
}

async function login(key) {
  const button = $("login");
  const err = $("login-error");
  err.hidden = true;
  button.disabled = true;
  try {
    let response;
    try {
      response = await fetch(`${API}/me`, { headers: { Authorization: `Bearer ${key}` } });
    } catch {
      throw new Error("Could not reach the server. Check the connection and retry.");
    }
    if (response.status === 401) {
      throw new Error("That API key was not accepted: it is unknown, mistyped or revoked.");
    }
    if (!response.ok) throw await errorFrom(response);
    const me = await response.json();
    state.key = key;
    state.me = me;
    sessionStorage.setItem(KEY_STORAGE, key);
    await enterApp();
  } catch (e) {
    state.key = null;
    state.me = null;
    sessionStorage.removeItem(KEY_STORAGE);
    showLogin(e.message || String(e), { keepKey: true });
  } finally {
    button.disabled = false;
  }
}

function logout() {
  if (state.searching) state.searching.abort();
  alerts.leave();
  cameras.leave();
  storage.leave();
  showView("search", { focus: false });
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  state.me = null;
  state.cameras = [];
  setQuery(null);
  clearResults();
  state.keyframes = { camera: null, items: [], seen: new Set() };
  $("keyframes").replaceChildren();
  $("kf-more").hidden = true;
  $("kf-status").textContent = "";
  cropProblem("");
  if ($("kf-dialog").open) $("kf-dialog").close();
  clearImageCache();
  clearError();
}

async function enterApp() {
  const { me } = state;
  $("who-name").textContent = me.name;
  $("who-name").title = me.name;
  const role = $("who-role");
  role.textContent = me.role;
  role.className = `role-badge role-${me.role}`;
  $("whoami").hidden = false;
  $("login-view").hidden = true;
  $("key").value = ""; // the key lives in sessionStorage only, not in a hidden field
  $("app-view").hidden = false;
  clearError();
  updateSearchButton();
  $("empty-role").textContent = canSearch()
    ? ""
    : "Your key is a viewer key: you can browse cameras and keyframes; searching needs an operator key.";
  $("tabs").hidden = false;
  await loadCameras();
  alerts.enter();
  const fromHash = { "#alerts": "alerts", "#cameras": "cameras" }[window.location.hash];
  if (fromHash) showView(fromHash, { focus: false });
}

// ---------------------------------------------------------------------------------------
// Views: Search, Alerts and Cameras, as tabs in the header

function showView(view, { focus = true } = {}) {
  const changed = state.view !== view;
  state.view = view;
  for (const [name, tab, panel] of [
    ["search", $("tab-search"), $("search-view")],
    ["alerts", $("tab-alerts"), $("alerts-view")],
    ["cameras", $("tab-cameras"), $("cameras-view")],
  ]) {
    const on = name === view;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
  }
  if (focus) $(`tab-${view}`).focus();
  if (changed) clearError();
  const hash = view === "search" ? "" : `#${view}`;
  if (window.location.hash !== hash) {
    window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}${hash}`);
  }
  if (view === "alerts" && state.me) alerts.shown();
  if (view === "cameras" && state.me) {
    cameras.shown();
    storage.shown();
  } else cameras.hidden();
}

// ---------------------------------------------------------------------------------------
// Cameras

async function loadCameras() {
  const body = await getJson(`${API}/cameras`);
  state.cameras = body.cameras;
  const select = $("kf-camera");
  select.replaceChildren();
  const filter = $("camera-filter");
  filter.replaceChildren();
  if (!state.cameras.length) {
    select.append(new Option("no cameras", ""));
    filter.append(el("p", "muted small", "The catalog has no cameras yet."));
    return;
  }
  for (const cam of state.cameras) {
    const label = cam.name && cam.name !== cam.id ? `${cam.id} — ${cam.name}` : cam.id;
    select.append(new Option(label, cam.id));
    const count = el("span", "muted small", ` ${plural(cam.appearances, "appearance")}`);
    filter.append(cameraCheckbox(cam, count));
  }
  onKeyframeCamera();
}

function cameraById(id) {
  return state.cameras.find((c) => c.id === id);
}

// ---------------------------------------------------------------------------------------
// Query: an uploaded/pasted/dropped crop, a stored appearance, or a box on a keyframe.

function setQuery(query) {
  const old = state.query;
  if (old && old.kind === "image" && (!query || query.url !== old.url)) {
    URL.revokeObjectURL(old.url);
  }
  state.query = query;
  const preview = $("query-preview");
  preview.replaceChildren();
  const text = $("query-text");
  const cropPreview = $("crop-preview");
  $("query-clear").hidden = !query;
  $("drop-zone").classList.toggle("has-image", Boolean(query && query.kind === "image"));
  if (!query) {
    text.textContent = "No query yet: choose a crop or draw a box on a keyframe.";
    cropPreview.hidden = true;
    cropPreview.removeAttribute("src");
  } else if (query.kind === "image") {
    const img = el("img", "query-thumb");
    img.alt = "";
    img.src = query.url;
    preview.append(img);
    cropPreview.src = query.url;
    cropPreview.hidden = false;
    const kb = Math.max(1, Math.round(query.blob.size / 1024));
    text.textContent = `Example crop: ${query.name} (${kb} KB)`;
  } else {
    cropPreview.hidden = true;
    cropPreview.removeAttribute("src");
    if (query.kind === "appearance" || query.kind === "track") {
      const img = el("img", "query-thumb");
      img.alt = "";
      loadInto(img, query.cropUrl);
      preview.append(img);
      const like = describeAppearance(
        { label: query.label, camera_id: query.camera, ts: query.ts }, "datetime",
      );
      text.textContent = query.kind === "track"
        ? `Similar to ${like}: all ${plural(query.crops, "crop")} of its track`
        : `Similar to ${like}`;
    } else {
      preview.append(boxPreview(query));
      const kf = query.keyframe;
      const [x1, y1, x2, y2] = query.box;
      text.textContent = `A ${x2 - x1}×${y2 - y1} px box on the ${kf.camera_id} keyframe of `
        + `${formatTime(kf.ts, "datetime-ms")}`;
    }
  }
  updateSearchButton();
}

function boxPreview({ image, box }) {
  const [x1, y1, x2, y2] = box;
  const w = x2 - x1;
  const h = y2 - y1;
  const scale = 64 / Math.max(w, h);
  const canvas = el("canvas", "query-thumb");
  canvas.width = Math.max(1, Math.round(w * scale));
  canvas.height = Math.max(1, Math.round(h * scale));
  canvas.getContext("2d").drawImage(image, x1, y1, w, h, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** Say what is wrong with a chosen file inside the drop zone ("" hides the message). */
function cropProblem(message) {
  const box = $("crop-error");
  box.textContent = message;
  box.hidden = !message;
}

/** A dropped, pasted or chosen file becomes the query once its bytes and size pass. */
async function useImage(file, name) {
  if (!file) return;
  const shown = name || file.name || "pasted image";
  const problem = await imageFileProblem(file, shown);
  if (problem) {
    if (state.query && state.query.kind === "image") setQuery(null); // no stale preview either
    cropProblem(problem);
    return;
  }
  cropProblem("");
  clearError();
  setQuery({ kind: "image", blob: file, name: shown, url: URL.createObjectURL(file) });
}

function updateSearchButton() {
  const button = $("search");
  const hint = $("search-hint");
  if (!state.me) {
    button.disabled = true;
    hint.textContent = "";
  } else if (!canSearch()) {
    button.disabled = true;
    hint.textContent = `Search needs the operator role; this key is a ${state.me.role} key. `
      + "You can still browse cameras and keyframes.";
  } else if (state.searching) {
    button.disabled = true;
    hint.textContent = "Searching…";
  } else if (!state.query) {
    button.disabled = true;
    hint.textContent = "Choose an example crop or draw a box on a keyframe first.";
  } else {
    button.disabled = false;
    hint.textContent = "";
  }
  for (const b of document.querySelectorAll(".find-similar, .watch")) b.disabled = !canSearch();
  alerts.queryChanged();
}

// ---------------------------------------------------------------------------------------
// Search

function filterFields(form) {
  for (const box of document.querySelectorAll('#camera-filter input[name="camera"]:checked')) {
    form.append("camera", box.value);
  }
  const since = inputToIso($("since").value);
  const until = inputToIso($("until").value);
  if (since && until && Date.parse(since) > Date.parse(until)) {
    throw new ApiError(0, "invalid_input", "Since is after until: swap them or clear one.");
  }
  if (since) form.append("since", since);
  if (until) form.append("until", until);
  for (const label of $("label").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    form.append("label", label);
  }
  for (const [id, name] of [["min-score", "min_score"], ["limit", "limit"]]) {
    const input = $(id);
    if (input.validity.badInput) {
      throw new ApiError(0, "invalid_input", `${input.labels[0].textContent} is not a number.`);
    }
    if (input.value !== "") form.append(name, input.value);
  }
  if ($("rerank").value) form.append("rerank", $("rerank").value);  // "" = search.rerank.mode
}

async function runSearch() {
  if (!canSearch() || !state.query) return;
  clearError();
  const form = new FormData();
  const q = state.query;
  if (q.kind === "image") form.append("image", q.blob, q.name);
  else if (q.kind === "appearance") form.append("appearance_id", String(q.id));
  else if (q.kind === "track") form.append("track_id", String(q.id));
  else {
    form.append("keyframe_id", String(q.keyframe.id));
    form.append("box", q.box.join(","));
  }
  filterFields(form);
  form.append("path", "true");

  if (state.searching) state.searching.abort();
  const ctl = new AbortController();
  state.searching = ctl;
  $("search").textContent = "Searching…";
  document.querySelector(".results").setAttribute("aria-busy", "true");
  updateSearchButton();
  const started = performance.now();
  try {
    const response = await request(`${API}/search`, { method: "POST", body: form, signal: ctl.signal });
    const body = await response.json();
    if (state.searching !== ctl) return;
    const timing = /total;dur=([\d.]+)/.exec(response.headers.get("Server-Timing") || "");
    const ms = timing ? Number(timing[1]) : performance.now() - started;
    feedback.searched(response.headers.get("X-Surveil-Audit-Id")); // before the cards are drawn
    showResults(body, ms);
  } finally {
    if (state.searching === ctl) {
      state.searching = null;
      $("search").textContent = "Search";
      document.querySelector(".results").removeAttribute("aria-busy");
      updateSearchButton();
    }
  }
}

/** "Find similar" on a sighting: search by its whole track (every crop of it, pooled). */
function findSimilar(sighting) {
  if (sighting.track_id == null) return searchAppearance(bestAppearance(sighting));
  const best = bestAppearance(sighting);
  showView("search", { focus: false });
  setQuery({
    kind: "track", id: sighting.track_id, cropUrl: best.crop_url, camera: sighting.camera_id,
    label: sighting.label, ts: best.ts, crops: sighting.appearances.length,
  });
  return runSearch();
}

/** Search by a stored appearance ({id, crop_url, camera_id, label, ts}), in the Search view. */
function searchAppearance(app) {
  showView("search", { focus: false });
  setQuery({
    kind: "appearance", id: app.id, cropUrl: app.crop_url, camera: app.camera_id, label: app.label,
    ts: app.ts,
  });
  return runSearch();
}

/** "Watch for this": the sighting's best appearance becomes an example of a new rule. */
function watchSighting(sighting) {
  const best = bestAppearance(sighting);
  showView("alerts", { focus: false });
  alerts.watch(best); // opens the new-rule form, now in sight, and focuses its name
}

// ---------------------------------------------------------------------------------------
// Results: summary, what limits the answer (cut at the limit, warnings), timeline, list

function clearResults() {
  state.sightings = [];
  state.selected = -1;
  state.result = { truncated: false, reason: null, warnings: [] };
  state.path = null;
  state.zoom = null;
  $("sightings").replaceChildren();
  $("timeline").replaceChildren();
  $("timeline").setAttribute("height", "0");
  $("summary").textContent = "No search yet.";
  $("empty").hidden = false;
  $("sort-wrap").hidden = true;
  renderNotes();
  renderPath();
  closeDetail();
}

function showResults(body, ms) {
  state.sightings = body.sightings.map((s, index) => ({
    ...s, index, t0: Date.parse(s.first_seen), t1: Date.parse(s.last_seen), best: bestAppearance(s),
  }));
  state.result = {
    truncated: Boolean(body.truncated),
    reason: body.truncated_reason || null,
    warnings: body.warnings || [],
  };
  state.path = body.path || null;
  state.selected = -1;
  state.zoom = null;
  closeDetail();
  $("empty").hidden = true;
  $("sort-wrap").hidden = state.sightings.length < 2;
  const cams = new Set(state.sightings.map((s) => s.camera_id));
  const summary = $("summary");
  if (!state.sightings.length) {
    summary.textContent = "No sightings matched. Lower the min score or widen the time range and cameras.";
  } else {
    summary.replaceChildren(
      el("strong", "", `${plural(state.sightings.length, "sighting")} across ${plural(cams.size, "camera")}`),
      el("span", "muted", ` · ${plural(appearanceCount(), "appearance")} · ${(ms / 1000).toFixed(2)} s`),
    );
  }
  renderNotes();
  renderPath();
  renderTimeline();
  renderList();
  state.generation += 1;
  $("sightings").dataset.generation = String(state.generation);
  $("sightings").scrollTop = 0;
}

/** "+14 s", "+3 min 05 s", "overlaps 4 s": the time between two legs of the path. */
function hopText(seconds) {
  if (seconds < 0) return `overlaps ${fmtDuration(-seconds * 1000)}`;
  return seconds === 0 ? "at once" : `+${fmtDuration(seconds * 1000)}`;
}

/** The path across cameras: one button per leg (opens its first sighting), hops between. */
function renderPath() {
  const box = $("path-box");
  const list = $("path");
  const path = state.path;
  const cameras = path ? new Set(path.legs.map((leg) => leg.camera_id)).size : 0;
  box.hidden = !path || cameras < 2;  // one camera: the list already says it all
  list.replaceChildren();
  if (box.hidden) return;
  const byTrack = new Map(state.sightings.map((s) => [s.track_id, s]));
  path.legs.forEach((leg, n) => {
    if (n) {
      const hop = path.hops[n - 1];
      const li = el("li", "hop", `→ ${hopText(hop.seconds)}`);
      li.setAttribute("aria-label", `then ${hop.to_camera}, ${hopText(hop.seconds)}`);
      list.append(li);
    }
    const li = el("li", "leg");
    li.dataset.camera = leg.camera_id;
    const span = sameDay(Date.parse(leg.first_seen), Date.parse(leg.last_seen))
      ? `${formatTime(leg.first_seen, "time")}–${formatTime(leg.last_seen, "time")}`
      : fmtRange(leg.first_seen, leg.last_seen);
    const open = el("button", "leg-open");
    open.type = "button";
    open.append(el("strong", "leg-camera", leg.camera_id), el("span", "leg-time", span));
    if (leg.track_ids.length > 1) open.append(el("span", "leg-tracks muted small", `${leg.track_ids.length} tracks`));
    if (leg.overlaps.length) {
      li.classList.add("overlap");
      open.append(el("span", "leg-flag", "!"));
      open.title = `Seen at the same time as ${plural(leg.overlaps.length, "matched track")} on another camera: `
        + "one of them is someone else, unless the cameras see the same spot";
    }
    const first = byTrack.get(leg.track_ids[0]);
    open.setAttribute("aria-label", `${leg.camera_id}, ${span}${leg.overlaps.length ? ", overlaps another camera" : ""}`);
    open.addEventListener("click", () => { if (first) select(first.index); });
    li.append(open);
    list.append(li);
  });
  const warning = $("path-warning");
  warning.hidden = !path.overlapping;
  warning.textContent = path.overlapping
    ? `${plural(path.overlapping, "leg")} (marked !) overlap another camera's in time: one object cannot be in `
      + "two views at once, so one of each pair is someone else. Raise the min score, or check the cameras."
    : "";
}

function appearanceCount() {
  return state.sightings.reduce((n, s) => n + s.appearances.length, 0);
}

/** Above the results: a banner with every warning (and its fix), and the cut-at-limit notice. */
function renderNotes() {
  const { truncated, reason, warnings } = state.result;
  const list = $("search-warning-list");
  list.replaceChildren();
  for (const w of warnings) {
    // A sentence, or {code, message, fix?}: either way the operator reads all of it.
    const item = typeof w === "string" ? { message: w } : w;
    const li = el("li", "search-warning");
    if (item.code) li.dataset.code = item.code;
    li.append(el("span", "warning-message", item.message || item.code || String(w)));
    if (item.fix) li.append(" ", el("span", "warning-fix", `Fix: ${item.fix}`));
    list.append(li);
  }
  $("search-warnings").hidden = !warnings.length;
  const cut = $("truncated");
  cut.hidden = !truncated;
  cut.dataset.reason = truncated ? reason || "limit" : "";
  cut.textContent = truncated ? cutNotice(reason) : "";
}

/** Why the answer is not every match, and what lifts the cut (the API's truncated_reason). */
function cutNotice(reason) {
  const shown = `Showing the first ${plural(state.sightings.length, "sighting")}`;
  if (reason === "max_candidates") {
    return `${shown}: the search stopped at its deepest (search.max_candidates) while candidates `
      + "still matched, so more may exist. Narrow the time range or cameras, or ask an admin to "
      + "raise search.max_candidates.";
  }
  return `${shown}: results were cut at the limit. Narrow the time range or raise the limit.`;
}

// ---------------------------------------------------------------------------------------
// Timeline: one lane per camera; the wheel zooms around the pointer, a drag pans, a
// Shift+drag zooms to the range it covers. Ticks follow the span shown, in the zone shown.

const TL = { left: 96, right: 16, top: 6, axis: 38, markH: 10, rowGap: 4 };
/** The narrowest span the timeline zooms to, and the least a whole result spans. */
const MIN_SPAN = 5_000;
/** Tick steps of fixed length (up to a week); longer spans step by calendar months. */
const TICK_STEPS = [
  1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5,
  216e5, 432e5, 864e5, 1728e5, 6048e5,
];
const MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120];
const DAY = 864e5;
const MONTH = 30.44 * DAY;
/** Pixels between ticks, by what their labels say (a date is about 62 px wide at 11 px). */
const TICK_ROOM = { "tick-s": 64, "tick-m": 64, "tick-date": 80, "tick-month": 58, "tick-year": 44 };

/** Everything the results cover, padded a little: what "Reset zoom" shows. */
function fullSpan() {
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const s of state.sightings) {
    t0 = Math.min(t0, s.t0);
    t1 = Math.max(t1, s.t1);
  }
  if (t1 - t0 < 2 * MIN_SPAN) {
    const mid = (t0 + t1) / 2;
    t0 = mid - MIN_SPAN;
    t1 = mid + MIN_SPAN;
  }
  const pad = (t1 - t0) * 0.03;
  return { t0: t0 - pad, t1: t1 + pad };
}

function shownSpan() {
  return state.zoom || fullSpan();
}

/** Show [t0, t1] (kept inside the results and no narrower than MIN_SPAN), then redraw. */
function setZoom(t0, t1, anchor = (t0 + t1) / 2) {
  const full = fullSpan();
  const fullW = full.t1 - full.t0;
  const frac = t1 > t0 ? (anchor - t0) / (t1 - t0) : 0.5;
  const span = Math.min(fullW, Math.max(MIN_SPAN, t1 - t0));
  let a = anchor - frac * span;
  a = Math.min(Math.max(a, full.t0), full.t1 - span);
  state.zoom = span >= fullW * 0.999 ? null : { t0: a, t1: a + span };
  drawTimelineSoon();
}

/** Zoom by `factor` (< 1 zooms in) keeping the time under `anchor` where it is. */
function zoomBy(factor, anchor) {
  const { t0, t1 } = shownSpan();
  const at = anchor === undefined ? (t0 + t1) / 2 : anchor;
  setZoom(at - (at - t0) * factor, at + (t1 - at) * factor, at);
}

let timelineFrame = 0;
function drawTimelineSoon() {
  cancelAnimationFrame(timelineFrame);
  timelineFrame = requestAnimationFrame(() => {
    if (state.sightings.length) renderTimeline();
  });
}

/** Ticks for [t0, t1] over `plotW` px, aligned in the zone shown, each with its label style. */
function timeTicks(t0, t1, plotW) {
  const span = t1 - t0;
  const out = [];
  const fits = (step, style) => span / step <= Math.max(2, plotW / TICK_ROOM[style]);
  const step = TICK_STEPS.find((st) => fits(st, st < 6e4 ? "tick-s" : st < DAY ? "tick-m" : "tick-date"));
  if (step !== undefined) {
    // Align on the zone's wall clock (its offset at t0: a DST change mid-span shifts later
    // ticks by the hour it moves, which the labels then say).
    const p = zoneParts(t0);
    const offset = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second, p.ms) - t0;
    const phase = step === 6048e5 ? 4 * DAY : 0; // weeks start on Monday (1970-01-01 was a Thursday)
    const first = Math.ceil((t0 + offset - phase) / step) * step + phase - offset;
    for (let t = first; t <= t1; t += step) {
      let style = step < 6e4 ? "tick-s" : step < DAY ? "tick-m" : "tick-date";
      if (style === "tick-m") {
        const q = zoneParts(t);
        if (q.hour === 0 && q.minute === 0) style = "tick-date"; // a new day says which
      }
      out.push({ t, style });
    }
    return out;
  }
  const months = MONTH_STEPS.find((m) => fits(m * MONTH, m >= 12 ? "tick-year" : "tick-month"))
    || MONTH_STEPS.at(-1);
  const p = zoneParts(t0);
  let k = Math.ceil((p.year * 12 + p.month - 1) / months) * months;
  for (;; k += months) {
    const t = zoneTime(Math.floor(k / 12), (k % 12) + 1, 1);
    if (t > t1) break;
    if (t >= t0) out.push({ t, style: months >= 12 ? "tick-year" : "tick-month" });
  }
  return out;
}

function renderTimeline() {
  const root = $("timeline");
  root.replaceChildren();
  const items = state.sightings;
  if (!items.length) {
    root.setAttribute("height", "0");
    return;
  }
  root.setAttribute("height", "1"); // shows the wrapper, so its width can be measured
  const width = Math.max(320, root.parentElement.clientWidth);
  const { left, right, top, axis, markH, rowGap } = TL;
  const { t0, t1 } = shownSpan();
  const plotW = width - left - right;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
  state.timelineGeo = { left, plotW, t0, t1 };

  // Lanes: one per camera, the sightings in sight packed into sub-rows so overlapping
  // marks stay visible (a mark is at least 6 px wide, so every hit can be clicked).
  const byCamera = new Map();
  for (const s of items) {
    if (!byCamera.has(s.camera_id)) byCamera.set(s.camera_id, []);
    byCamera.get(s.camera_id).push(s);
  }
  const lanes = [...byCamera.keys()].sort().map((camera) => {
    const rows = [];
    const all = byCamera.get(camera);
    const placed = all
      .filter((s) => s.t1 >= t0 && s.t0 <= t1)
      .sort((a, b) => a.t0 - b.t0)
      .map((s) => {
        const x1 = Math.max(left, x(s.t0));
        const w = Math.max(6, Math.min(left + plotW, x(s.t1)) - x1);
        let row = rows.findIndex((end) => end + 2 <= x1);
        if (row < 0) {
          if (rows.length < 6) row = rows.push(0) - 1;
          else row = rows.indexOf(Math.min(...rows));
        }
        rows[row] = Math.max(rows[row], x1 + w);
        return { s, x1, w, row };
      });
    return { camera, placed, total: all.length, height: Math.max(30, rows.length * (markH + rowGap) + 14) };
  });
  const plotH = lanes.reduce((h, l) => h + l.height, 0);
  const height = top + plotH + axis;
  root.setAttribute("width", String(width));
  root.setAttribute("height", String(height));
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  root.dataset.t0 = String(Math.round(t0));
  root.dataset.t1 = String(Math.round(t1));
  root.dataset.zoomed = String(Boolean(state.zoom));
  root.dataset.left = String(left);
  root.dataset.plotWidth = String(plotW);

  const grid = svg("g", { class: "grid" });
  const axisG = svg("g", { class: "axis" });
  const ticks = timeTicks(t0, t1, plotW);
  for (const { t, style } of ticks) {
    const tx = x(t);
    grid.append(svg("line", { x1: tx, x2: tx, y1: top, y2: top + plotH }));
    axisG.append(svg("line", { x1: tx, x2: tx, y1: top + plotH, y2: top + plotH + 4 }));
    const label = formatTime(t, style);
    const half = label.length * 3.4; // about half its width at 11 px
    let anchor = "middle";
    if (tx + half > width - 2) anchor = "end";
    else if (tx - half < left - 8) anchor = "start";
    const text = svg("text", { class: "tick", x: tx, y: top + plotH + 16, "text-anchor": anchor });
    text.textContent = label;
    axisG.append(text);
  }
  axisG.append(svg("line", { x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }));
  // Under the lane names: the day the view starts on, and the zone every tick is in.
  const day = svg("text", { x: 4, y: top + plotH + 16, class: "axis-day" });
  day.textContent = formatTime(t0, "tick-date");
  const zoneText = svg("text", { x: 4, y: top + plotH + 31, class: "axis-zone" });
  // Local time across a change to or from summer time has two offsets: the ticks say
  // their wall time, the bar above both ends' offsets.
  const zones = new Set([t0, t1, ...ticks.map((k) => k.t)].map((t) => zoneLabel(t)));
  zoneText.textContent = zones.size === 1 ? zoneLabel(t0) : "local time";
  axisG.append(day, zoneText);
  root.append(grid);

  let y = top;
  for (const lane of lanes) {
    const g = svg("g", { class: "lane", "data-camera": lane.camera });
    g.append(svg("rect", { class: "lane-bg", x: 0, y, width, height: lane.height }));
    const tip = svg("title"); // the lane's tooltip (marks carry their own)
    const inSight = lane.placed.length === lane.total ? "" : `, ${lane.placed.length} in sight`;
    tip.textContent = `${lane.camera}: ${plural(lane.total, "sighting")}${inSight}`;
    g.append(tip);
    const name = svg("text", { class: "lane-label", x: 8, y: y + lane.height / 2 + 4 });
    name.textContent = lane.camera.length > 13 ? `${lane.camera.slice(0, 12)}…` : lane.camera;
    g.append(name);
    for (const { s, x1, w, row } of lane.placed) {
      const mark = svg("rect", {
        class: `mark ${scoreClass(s.best_score)}`,
        x: x1, y: y + 7 + row * (markH + rowGap), width: w, height: markH, rx: 2,
        tabindex: 0, role: "button", "data-index": s.index,
        "aria-label": `${s.camera_id} ${s.label}, ${fmtRange(s.first_seen, s.last_seen)}, score ${s.best_score.toFixed(2)}`,
      });
      const title = svg("title");
      title.textContent = `${s.camera_id} · ${s.label} · score ${s.best_score.toFixed(2)}\n`
        + `${fmtRange(s.first_seen, s.last_seen)} (${plural(s.appearances.length, "appearance")})`;
      mark.append(title);
      if (s.index === state.selected) mark.classList.add("selected");
      g.append(mark);
    }
    root.append(g);
    y += lane.height;
  }
  root.append(axisG);
  if (state.drag && state.drag.select) {
    const [a, b] = [state.drag.x0, state.drag.x1].sort((p, q) => p - q);
    root.append(svg("rect", { class: "zoom-select", x: a, y: top, width: Math.max(1, b - a), height: plotH }));
  }

  const zoomed = Boolean(state.zoom);
  // The span shown, its two ends whole (on two lines where the bar is narrow).
  const end = sameDay(t0, t1) ? formatTime(t1, "time") : formatTime(t1);
  $("timeline-span").replaceChildren(el("span", "", formatTime(t0)), el("span", "", `→ ${end}`));
  $("tl-reset").disabled = !zoomed;
  $("tl-out").disabled = !zoomed;
  $("tl-in").disabled = t1 - t0 <= MIN_SPAN * 1.001;
}

/** A pointer's x on the timeline -> the time under it (null left of the plot). */
function timeAt(clientX) {
  const geo = state.timelineGeo;
  if (!geo) return null;
  const px = clientX - $("timeline").getBoundingClientRect().left;
  if (px < geo.left) return null;
  return geo.t0 + ((px - geo.left) / geo.plotW) * (geo.t1 - geo.t0);
}

function onTimelineWheel(event) {
  if (!state.sightings.length) return;
  const at = timeAt(event.clientX);
  if (at === null) return; // over the lane names: the page scrolls as usual
  event.preventDefault();
  const scale = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
  const dx = event.deltaX * scale;
  const dy = event.deltaY * scale;
  if (Math.abs(dx) > Math.abs(dy)) {
    const { t0, t1 } = shownSpan();
    const shift = (dx / state.timelineGeo.plotW) * (t1 - t0);
    setZoom(t0 + shift, t1 + shift);
  } else {
    zoomBy(Math.exp(Math.max(-2, Math.min(2, dy * 0.002))), at);
  }
}

function onTimelineDown(event) {
  state.dragged = false;
  if (event.button !== 0 || !state.sightings.length || timeAt(event.clientX) === null) return;
  const { t0, t1 } = shownSpan();
  const local = event.clientX - $("timeline").getBoundingClientRect().left;
  state.drag = {
    id: event.pointerId, startX: event.clientX, t0, t1, moving: false,
    select: event.shiftKey, x0: local, x1: local,
  };
}

function onTimelineMove(event) {
  const d = state.drag;
  if (!d || d.id !== event.pointerId) return;
  const dx = event.clientX - d.startX;
  if (!d.moving && Math.abs(dx) < 4) return;
  if (!d.moving) {
    d.moving = true;
    $("timeline").setPointerCapture(event.pointerId);
    $("timeline").classList.add(d.select ? "selecting" : "panning");
  }
  const geo = state.timelineGeo;
  if (d.select) {
    const local = event.clientX - $("timeline").getBoundingClientRect().left;
    d.x1 = Math.min(geo.left + geo.plotW, Math.max(geo.left, local));
    drawTimelineSoon();
  } else {
    const shift = (-dx / geo.plotW) * (d.t1 - d.t0);
    setZoom(d.t0 + shift, d.t1 + shift);
  }
}

function onTimelineUp(event) {
  const d = state.drag;
  if (!d || d.id !== event.pointerId) return;
  state.drag = null;
  $("timeline").classList.remove("panning", "selecting");
  if (!d.moving) return; // a click: the marks handle it
  state.dragged = true; // the click that ends a drag selects nothing
  if (d.select) {
    const geo = state.timelineGeo;
    const at = (px) => geo.t0 + ((px - geo.left) / geo.plotW) * (geo.t1 - geo.t0);
    const [a, b] = [at(d.x0), at(d.x1)].sort((p, q) => p - q);
    if (b > a) setZoom(a, b);
    else drawTimelineSoon();
  }
}

function sortedSightings() {
  const items = state.sightings.slice();
  if ($("sort").value === "score") items.sort((a, b) => b.best_score - a.best_score || a.t0 - b.t0);
  return items;
}

function renderList() {
  const list = $("sightings");
  const frag = document.createDocumentFragment();
  for (const s of sortedSightings()) {
    const li = el("li", "sighting");
    li.dataset.camera = s.camera_id;
    li.dataset.index = String(s.index);
    li.dataset.first = s.first_seen;
    li.dataset.last = s.last_seen;
    li.dataset.appearance = String(s.best.id);
    if (s.track_id != null) li.dataset.track = String(s.track_id);
    if (s.index === state.selected) li.classList.add("selected");
    const open = el("button", "sighting-open");
    open.type = "button";
    open.setAttribute("aria-label", `Open sighting: ${s.camera_id}, ${s.label}, ${fmtRange(s.first_seen, s.last_seen)}`);
    open.append(lazyImage(s.best.crop_url, "thumb", `Best crop, ${s.label} on ${s.camera_id}`));
    open.append(el("span", `score ${scoreClass(s.best_score)}`, s.best_score.toFixed(2)));
    const info = el("span", "s-info");
    const line1 = el("span", "s-line1");
    line1.append(el("span", "s-camera", s.camera_id), el("span", "s-label", s.label));
    line1.append(el("span", "s-count muted", plural(s.appearances.length, "appearance")));
    const line2 = el("span", "s-line2 muted");
    line2.append(
      el("span", "s-first", formatTime(s.first_seen)),
      el("span", "s-last", `→ ${sameDay(s.t0, s.t1) ? formatTime(s.last_seen, "time") : formatTime(s.last_seen)}`),
      el("span", "s-duration", `(${fmtDuration(s.t1 - s.t0)})`),
    );
    info.append(line1, line2);
    open.append(info);
    const like = describeAppearance(s.best);
    const similar = button("Find similar", "btn btn-small find-similar", {
      title: `Search every camera for ${like}`,
    });
    similar.disabled = !canSearch();
    const watch = button("Watch for this", "btn btn-small watch", {
      title: `Make ${like} an example of a new alert rule`,
    });
    watch.disabled = !canSearch();
    li.append(open, similar, watch);
    feedback.decorate(li, s);
    frag.append(li);
  }
  list.replaceChildren(frag);
}

function select(index, { scroll = true } = {}) {
  state.selected = index;
  for (const m of document.querySelectorAll("#timeline .mark")) {
    m.classList.toggle("selected", Number(m.dataset.index) === index);
  }
  let current = null;
  for (const li of document.querySelectorAll("#sightings .sighting")) {
    const on = Number(li.dataset.index) === index;
    li.classList.toggle("selected", on);
    if (on) current = li;
  }
  if (current && scroll) current.scrollIntoView({ block: "nearest" });
  openDetail(state.sightings[index]);
}

// ---------------------------------------------------------------------------------------
// Detail pane

function openDetail(s) {
  const pane = $("detail");
  $("detail-title").textContent = `${s.camera_id} · ${s.label}`;
  const meta = $("detail-meta");
  meta.replaceChildren();
  const rows = [
    ["Camera", s.camera_id],
    ["Label", s.label],
    ["First seen", formatTime(s.first_seen, "datetime-ms")],
    ["Last seen", formatTime(s.last_seen, "datetime-ms")],
    ["Duration", fmtDuration(s.t1 - s.t0)],
    ["Best score", s.best_score.toFixed(2)],
    ["Appearances", String(s.appearances.length)],
  ];
  for (const [k, v] of rows) meta.append(el("dt", "", k), el("dd", "", v));
  const similar = $("detail-similar");
  similar.dataset.index = String(s.index);
  similar.disabled = !canSearch();
  similar.textContent = `Find similar to ${describeAppearance(s.best)}`;
  similar.title = s.track_id == null
    ? "Search every camera by this appearance"
    : `Search every camera by all ${plural(s.appearances.length, "crop")} of this track`;
  const watch = $("detail-watch");
  watch.dataset.index = String(s.index);
  watch.disabled = !canSearch();
  watch.title = `Make ${describeAppearance(s.best)} an example of a new alert rule`;

  const list = $("detail-appearances");
  list.replaceChildren();
  $("detail-apps-title").textContent = `Appearances (${s.appearances.length})`;
  for (const a of s.appearances) {
    const li = el("li", "");
    const b = el("button", "appearance");
    b.type = "button";
    b.dataset.id = String(a.id);
    b.setAttribute("aria-label", `Show the appearance at ${formatTime(a.ts, "time-ms")}`);
    b.append(lazyImage(a.crop_url, "app-thumb", ""));
    b.append(el("span", "app-time", formatTime(a.ts, "time-ms")));
    const sc = el("span", `app-score ${scoreClass(a.score)}`, a.score.toFixed(2));
    if (a.id === s.best.id) sc.textContent += " ★";
    b.append(sc);
    b.addEventListener("click", () => showAppearance(a));
    li.append(b);
    list.append(li);
  }
  pane.hidden = false;
  document.querySelector(".results").classList.add("with-detail");
  showAppearance(s.best);
}

function showAppearance(a) {
  const [x1, y1, x2, y2] = a.bbox.map((v) => Math.max(0, Math.round(v)));
  const box = [x1, y1, Math.max(x2, x1 + 1), Math.max(y2, y1 + 1)].join(",");
  const img = $("detail-image");
  img.removeAttribute("src");
  img.alt = `The ${a.camera_id} keyframe of ${formatTime(a.ts, "datetime-ms")} with the ${a.label} boxed`;
  loadInto(img, `${a.keyframe_url}?box=${box}`);
  $("detail-image").dataset.appearance = String(a.id);
  $("detail-caption").textContent = `${formatTime(a.ts, "datetime-ms")} · frame ${a.frame_index} · `
    + `score ${a.score.toFixed(2)} · confidence ${a.confidence.toFixed(2)}`;
  for (const b of document.querySelectorAll("#detail-appearances .appearance")) {
    b.classList.toggle("current", Number(b.dataset.id) === a.id);
  }
}

function closeDetail() {
  const pane = $("detail");
  if (pane.hidden) return;
  pane.hidden = true;
  document.querySelector(".results").classList.remove("with-detail");
  $("detail-image").removeAttribute("src");
  $("detail-image").dataset.src = "";
  for (const node of document.querySelectorAll(".selected")) node.classList.remove("selected");
  state.selected = -1;
}

// ---------------------------------------------------------------------------------------
// Keyframes: browse a camera, open one large, draw a box

function onKeyframeCamera() {
  const cam = cameraById($("kf-camera").value);
  const time = $("kf-time");
  if (cam && cam.first_ts) {
    time.value = isoToInput(cam.first_ts);
    time.min = isoToInput(cam.first_ts);
    time.max = isoToInput(cam.last_ts);
  }
  state.keyframes = { camera: cam ? cam.id : null, items: [], seen: new Set() };
  $("keyframes").replaceChildren();
  $("kf-more").hidden = true;
  cameraStatus(cam);
  refreshZoneTags();
}

function cameraStatus(cam) {
  $("kf-status").textContent = cam
    ? `${plural(cam.keyframes, "keyframe")}${cam.first_ts ? `, from ${formatTime(cam.first_ts)}` : ""}`
    : "";
}

async function loadKeyframes({ more = false } = {}) {
  const camera = $("kf-camera").value;
  if (!camera) return;
  clearError();
  let since;
  if (more && state.keyframes.items.length) {
    const last = state.keyframes.items[state.keyframes.items.length - 1];
    since = new Date(Date.parse(last.ts) + 1).toISOString();
  } else {
    since = inputToIso($("kf-time").value);
    state.keyframes = { camera, items: [], seen: new Set() };
    $("keyframes").replaceChildren();
  }
  $("kf-status").textContent = "Loading keyframes…";
  const path = withQuery(`${API}/cameras/${encodeURIComponent(camera)}/keyframes`, {
    since, limit: KEYFRAME_PAGE,
  });
  const body = await getJson(path);
  if (state.keyframes.camera !== camera) return;
  const fresh = body.keyframes.filter((k) => !state.keyframes.seen.has(k.id));
  const grid = $("keyframes");
  for (const kf of fresh) {
    state.keyframes.seen.add(kf.id);
    state.keyframes.items.push(kf);
    grid.append(keyframeButton(kf));
  }
  keyframeStatus();
  $("kf-more").hidden = body.keyframes.length < KEYFRAME_PAGE;
}

function keyframeStatus() {
  const n = state.keyframes.items.length;
  $("kf-status").textContent = n
    ? `${plural(n, "keyframe")} shown (times ${zoneLabel()}); pick one to draw a box.`
    : "No keyframes from that time on.";
}

function keyframeButton(kf) {
  const b = el("button", "keyframe");
  b.type = "button";
  b.dataset.id = String(kf.id);
  b.setAttribute("aria-label", `Keyframe at ${formatTime(kf.ts, "datetime-ms")}, `
    + `${plural(kf.appearances, "detection")}`);
  if (kf.image_url) b.append(lazyImage(kf.image_url, "kf-thumb", ""));
  else {
    b.disabled = true;
    b.append(el("span", "kf-noimage", "no image"));
  }
  // The thumbnail has room for the time of day; its label and title carry the date and zone.
  b.title = formatTime(kf.ts, "datetime-ms");
  b.append(el("span", "kf-time", formatTime(kf.ts, "clock-tenths")));
  if (kf.appearances) b.append(el("span", "kf-count", String(kf.appearances)));
  b.addEventListener("click", guarded(() => openKeyframe(kf)));
  return b;
}

function keyframeTitle(kf) {
  $("kf-dialog-title").textContent = `Keyframe · ${kf.camera_id} · `
    + `${formatTime(kf.ts, "datetime-ms")} · frame ${kf.frame_index}`;
}

function decodeImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the keyframe image could not be decoded"));
    img.src = url;
  });
}

async function openKeyframe(summary) {
  const [detail, blobUrl] = await Promise.all([
    getJson(`${API}/keyframes/${summary.id}`),
    authedImageUrl(summary.image_url),
  ]);
  const image = await decodeImage(blobUrl);
  state.dialog = { keyframe: detail, image, box: null, drag: null, scale: 1 };
  keyframeTitle(detail);
  setDialogBox(null);
  const picks = $("kf-detections");
  picks.replaceChildren();
  for (const a of detail.appearances) {
    const b = el("button", "btn btn-small", `${a.label} ${a.confidence.toFixed(2)}`);
    b.type = "button";
    b.title = `Use the detected box ${a.bbox.map(Math.round).join(",")}`;
    b.addEventListener("click", () => {
      const [x1, y1, x2, y2] = a.bbox;
      setDialogBox(toBox({ x: x1, y: y1 }, { x: x2, y: y2 }));
      drawKeyframe();
    });
    picks.append(b);
  }
  const dialog = $("kf-dialog");
  if (!dialog.open) dialog.showModal();
  fitKeyframe();
}

/** Size the canvas to the room the dialog leaves (up to 2x the keyframe), then draw. */
function fitKeyframe() {
  const d = state.dialog;
  if (!d) return;
  const stage = document.querySelector(".kf-stage");
  const roomW = stage.clientWidth - 20;
  const roomH = window.innerHeight * 0.96 - 150;
  const { width, height } = d.keyframe;
  d.scale = Math.max(0.1, Math.min(2, roomW / width, roomH / height));
  const canvas = $("kf-canvas");
  canvas.width = Math.round(width * d.scale);
  canvas.height = Math.round(height * d.scale);
  drawKeyframe();
}

function drawKeyframe() {
  const d = state.dialog;
  if (!d) return;
  const ctx = $("kf-canvas").getContext("2d");
  const { width, height } = d.keyframe;
  const px = 1 / d.scale; // keyframe pixels per canvas pixel
  ctx.setTransform(d.scale, 0, 0, d.scale, 0, 0); // draw in keyframe pixels
  ctx.drawImage(d.image, 0, 0, width, height);
  ctx.save();
  ctx.setLineDash([6 * px, 4 * px]);
  ctx.lineWidth = 1.5 * px;
  ctx.strokeStyle = "rgba(255,255,255,0.85)";
  for (const a of d.keyframe.appearances) {
    const [x1, y1, x2, y2] = a.bbox;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  }
  ctx.restore();
  const box = d.drag ? d.drag.box : d.box;
  if (box) {
    const [x1, y1, x2, y2] = box;
    ctx.save();
    ctx.fillStyle = "rgba(0,0,0,0.35)";
    ctx.fillRect(0, 0, width, y1);
    ctx.fillRect(0, y2, width, height - y2);
    ctx.fillRect(0, y1, x1, y2 - y1);
    ctx.fillRect(x2, y1, width - x2, y2 - y1);
    ctx.lineWidth = 4 * px;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.lineWidth = 2 * px;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.restore();
  }
}

/** A pointer event -> keyframe pixel coordinates (whatever size the canvas is shown at). */
function canvasPoint(event) {
  const { width, height } = state.dialog.keyframe;
  const rect = $("kf-canvas").getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * width;
  const y = ((event.clientY - rect.top) / rect.height) * height;
  return {
    x: Math.min(width, Math.max(0, x)),
    y: Math.min(height, Math.max(0, y)),
    cssX: event.clientX,
    cssY: event.clientY,
  };
}

/** Two corners in keyframe pixels -> integer x1,y1,x2,y2 inside the image, or null if empty. */
function toBox(a, b) {
  const { width, height } = state.dialog.keyframe;
  const x1 = Math.max(0, Math.floor(Math.min(a.x, b.x)));
  const y1 = Math.max(0, Math.floor(Math.min(a.y, b.y)));
  const x2 = Math.min(width, Math.ceil(Math.max(a.x, b.x)));
  const y2 = Math.min(height, Math.ceil(Math.max(a.y, b.y)));
  return x2 > x1 && y2 > y1 ? [x1, y1, x2, y2] : null;
}

function setDialogBox(box) {
  state.dialog.box = box;
  $("kf-box").textContent = box
    ? `box ${box.join(", ")} (${box[2] - box[0]}×${box[3] - box[1]} px)`
    : "no box yet";
  $("kf-use").disabled = !box;
}

function onCanvasDown(event) {
  if (!state.dialog || event.button !== 0) return;
  event.preventDefault();
  $("kf-canvas").setPointerCapture(event.pointerId);
  const start = canvasPoint(event);
  state.dialog.drag = { start, box: null };
}

function onCanvasMove(event) {
  const d = state.dialog;
  if (!d || !d.drag) return;
  d.drag.box = toBox(d.drag.start, canvasPoint(event));
  drawKeyframe();
}

function onCanvasUp(event) {
  const d = state.dialog;
  if (!d || !d.drag) return;
  const end = canvasPoint(event);
  const { start } = d.drag;
  d.drag = null;
  const moved = Math.hypot(end.cssX - start.cssX, end.cssY - start.cssY);
  if (moved < 4) {
    // A click: pick the smallest detected box under the pointer.
    const hits = d.keyframe.appearances
      .filter(({ bbox: [x1, y1, x2, y2] }) => end.x >= x1 && end.x <= x2 && end.y >= y1 && end.y <= y2)
      .sort((p, q) => area(p.bbox) - area(q.bbox));
    if (hits.length) {
      const [x1, y1, x2, y2] = hits[0].bbox;
      setDialogBox(toBox({ x: x1, y: y1 }, { x: x2, y: y2 }));
    }
  } else {
    setDialogBox(toBox(start, end));
  }
  drawKeyframe();
}

function area([x1, y1, x2, y2]) {
  return (x2 - x1) * (y2 - y1);
}

function useDialogBox() {
  const d = state.dialog;
  if (!d || !d.box) return;
  clearError();
  setQuery({ kind: "keyframe_box", keyframe: d.keyframe, box: d.box, image: d.image });
  $("kf-dialog").close();
  $("search").focus();
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (key) login(key);
  });
  $("logout").addEventListener("click", () => {
    logout();
    showLogin("");
  });

  // Example crop: file input, drag and drop, paste.
  $("crop-file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    guarded(useImage)(file);
    event.target.value = "";
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...event.dataTransfer.files];
    const file = files.find((f) => f.type.startsWith("image/")) || files[0];
    if (file) guarded(useImage)(file);
  });
  // A drop that misses the zone must not navigate away from the console.
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => event.preventDefault());
  document.addEventListener("paste", (event) => {
    if (!state.me || !event.clipboardData) return;
    const item = [...event.clipboardData.items].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (!item) return; // plain text goes to whatever input has focus
    event.preventDefault();
    guarded(useImage)(item.getAsFile(), `pasted.${item.type.split("/")[1] || "png"}`);
  });
  $("query-clear").addEventListener("click", () => {
    cropProblem("");
    setQuery(null);
  });

  // Keyframes.
  $("kf-camera").addEventListener("change", onKeyframeCamera);
  $("kf-load").addEventListener("click", guarded(() => loadKeyframes()));
  $("kf-more").addEventListener("click", guarded(() => loadKeyframes({ more: true })));
  const canvas = $("kf-canvas");
  canvas.addEventListener("pointerdown", onCanvasDown);
  canvas.addEventListener("pointermove", onCanvasMove);
  canvas.addEventListener("pointerup", onCanvasUp);
  canvas.addEventListener("pointercancel", () => {
    if (state.dialog) state.dialog.drag = null;
    drawKeyframe();
  });
  $("kf-use").addEventListener("click", useDialogBox);
  $("kf-cancel").addEventListener("click", () => $("kf-dialog").close());
  $("kf-dialog").addEventListener("close", () => {
    state.dialog = null;
  });

  // Search.
  $("search").addEventListener("click", guarded(runSearch));
  for (const input of document.querySelectorAll(".sidebar input:not([type=file]):not([type=checkbox])")) {
    if (input.id === "kf-time") continue;
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !$("search").disabled) {
        event.preventDefault();
        guarded(runSearch)();
      }
    });
  }
  $("sort").addEventListener("change", renderList);

  // Results: list and timeline select; find-similar searches again.
  $("sightings").addEventListener("click", (event) => {
    const li = event.target.closest(".sighting");
    if (!li) return;
    const s = state.sightings[Number(li.dataset.index)];
    if (event.target.closest(".find-similar")) guarded(findSimilar)(s);
    else if (event.target.closest(".watch")) watchSighting(s);
    else select(s.index, { scroll: false });
  });
  const timeline = $("timeline");
  timeline.addEventListener("click", (event) => {
    if (state.dragged) {
      state.dragged = false; // the end of a pan or a range, not a click on a mark
      return;
    }
    const mark = event.target.closest(".mark");
    if (mark) select(Number(mark.dataset.index));
  });
  timeline.addEventListener("wheel", onTimelineWheel, { passive: false });
  timeline.addEventListener("pointerdown", onTimelineDown);
  timeline.addEventListener("pointermove", onTimelineMove);
  timeline.addEventListener("pointerup", onTimelineUp);
  timeline.addEventListener("pointercancel", (event) => {
    if (state.drag && state.drag.id === event.pointerId) state.drag = null;
    timeline.classList.remove("panning", "selecting");
    drawTimelineSoon();
  });
  $("tl-in").addEventListener("click", () => zoomBy(0.5));
  $("tl-out").addEventListener("click", () => zoomBy(2));
  $("tl-reset").addEventListener("click", () => {
    state.zoom = null;
    drawTimelineSoon();
  });
  timeline.addEventListener("keydown", (event) => {
    const mark = event.target.closest(".mark");
    if (mark && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(Number(mark.dataset.index));
    }
  });
  $("detail-close").addEventListener("click", closeDetail);
  $("detail-similar").addEventListener("click", guarded(() => {
    const s = state.sightings[Number($("detail-similar").dataset.index)];
    if (s) return findSimilar(s);
    return undefined;
  }));
  $("detail-watch").addEventListener("click", () => {
    const s = state.sightings[Number($("detail-watch").dataset.index)];
    if (s) watchSighting(s);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
    if (state.view === "search" && !$("detail").hidden) closeDetail();
    else if (state.view === "alerts") alerts.escape();
  });

  // Views: the header's tabs (arrow keys move between them, as in any tab list).
  $("tab-search").addEventListener("click", () => showView("search"));
  $("tab-alerts").addEventListener("click", () => showView("alerts"));
  $("tab-cameras").addEventListener("click", () => showView("cameras"));
  $("tabs").addEventListener("keydown", (event) => {
    const order = ["search", "alerts", "cameras"];
    let next = null;
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const i = order.indexOf(state.view) + (event.key === "ArrowRight" ? 1 : -1);
      next = order[(i + order.length) % order.length];
    } else if (event.key === "Home") next = order[0];
    else if (event.key === "End") next = order[order.length - 1];
    if (!next) return;
    event.preventDefault();
    showView(next);
  });

  window.addEventListener("resize", () => {
    if ($("kf-dialog").open) fitKeyframe();
  });

  // The timeline fills its width: draw it again when that changes.
  new ResizeObserver(drawTimelineSoon).observe(document.querySelector(".timeline-wrap"));

  // Times: UTC or local, from the header's switch; every view redraws in the new zone.
  $("zone-utc").addEventListener("click", () => setTimeZone("utc"));
  $("zone-local").addEventListener("click", () => setTimeZone("local"));
  onTimeZoneChange(onZoneChanged);
  for (const id of DATE_INPUTS) $(id).addEventListener("input", refreshZoneTags);
  showZone();
}

/** The switch says which zone is shown; the local button names the browser's zone. */
function showZone() {
  const mode = timeZone();
  for (const [id, on] of [["zone-utc", mode === "utc"], ["zone-local", mode === "local"]]) {
    $(id).setAttribute("aria-pressed", String(on));
  }
  $("zone-local").title = `Show times in this computer's zone, ${localZoneName()} `
    + `(now ${zoneLabel(Date.now(), "local")})`;
  $("zone-utc").title = "Show times in UTC, as the CLI and the API do";
  refreshZoneTags();
}

function onZoneChanged(before, after) {
  showZone();
  // A typed time keeps meaning the same instant: the fields show it in the new zone.
  for (const id of DATE_INPUTS) rezoneInput($(id), before, after);
  setQuery(state.query);
  if (state.sightings.length) {
    renderTimeline();
    renderList();
    if (state.selected >= 0) openDetail(state.sightings[state.selected]);
  }
  if (state.keyframes.items.length) {
    $("keyframes").replaceChildren(...state.keyframes.items.map(keyframeButton));
    keyframeStatus();
  } else {
    cameraStatus(cameraById($("kf-camera").value));
  }
  if (state.dialog) keyframeTitle(state.dialog.keyframe);
  alerts.zoneChanged();
  cameras.zoneChanged();
}

function start() {
  hooks.unauthorized = sessionExpired;
  alerts.init({ currentQuery: () => state.query, searchAppearance, canSearch });
  cameras.init();
  storage.init();
  feedback.init({ showResults, limit: () => $("limit").value });
  wire();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) login(saved);
  else showLogin("");
}

start();
