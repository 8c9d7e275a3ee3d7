// surveil operator console: plain ES modules, no build step, no dependencies.
// app.js: log in, the Search view (query, filters, timeline, list, detail, keyframes) and
// the header's view tabs; core.js holds HTTP, images and formatting; alerts.js the Alerts
// view (alerts, their detail, and the alert rules); cameras.js the Cameras view (health).

import {
  $, API, ApiError, authedImageUrl, cameraCheckbox, canWrite, clearError, clearImageCache, el, errorFrom,
  fmtDateTime, fmtDayShort, fmtDuration, fmtHourMin, fmtRange, fmtTime, fmtTimeMs,
  fmtTimeTenths, getJson, guarded, hooks, isoToLocal, lazyImage, loadInto, localToIso, plural,
  request, sameDay, scoreClass, showError, state, svg, withQuery,
} from "./core.js";
import * as alerts from "./alerts.js";
import * as cameras from "./cameras.js";

const KEY_STORAGE = "surveil.key";
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/bmp"]);
const KEYFRAME_PAGE = 24;

Object.assign(state, {
  /** {kind: "image", blob, name, url} | {kind: "appearance", id, cropUrl, label}
   *  | {kind: "keyframe_box", keyframe, box, image} */
  query: null,
  sightings: [],
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
  if ($("kf-dialog").open) $("kf-dialog").close();
  clearImageCache();
  clearError();
}

async function enterApp() {
  const { me } = state;
  $("who-name").textContent = me.name;
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
  if (view === "cameras" && state.me) cameras.shown();
  else cameras.hidden();
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
    if (query.kind === "appearance") {
      const img = el("img", "query-thumb");
      img.alt = "";
      loadInto(img, query.cropUrl);
      preview.append(img);
      text.textContent = `Similar to appearance #${query.id} (${query.camera}, ${query.label})`;
    } else {
      preview.append(boxPreview(query));
      const kf = query.keyframe;
      text.textContent = `Box ${query.box.join(",")} on keyframe #${kf.id} `
        + `(${kf.camera_id}, ${fmtTime.format(new Date(kf.ts))})`;
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

function useImage(file, name) {
  if (!file) return;
  if (!IMAGE_TYPES.has(file.type)) {
    showError(new ApiError(0, "unsupported_media_type",
      `"${name || file.name || "that file"}" is not a JPEG, PNG, WebP or BMP image.`));
    return;
  }
  clearError();
  setQuery({ kind: "image", blob: file, name: name || file.name || "pasted image", url: URL.createObjectURL(file) });
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
  const since = localToIso($("since").value);
  const until = localToIso($("until").value);
  if (since && until && since > until) {
    throw new ApiError(0, "invalid_input", "Since is after until: swap them or clear one.");
  }
  if (since) form.append("since", since);
  if (until) form.append("until", until);
  for (const label of $("label").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    form.append("label", label);
  }
  for (const [id, name] of [["min-score", "min_score"], ["gap", "gap"], ["limit", "limit"]]) {
    const input = $(id);
    if (input.validity.badInput) {
      throw new ApiError(0, "invalid_input", `${input.labels[0].textContent} is not a number.`);
    }
    if (input.value !== "") form.append(name, input.value);
  }
}

async function runSearch() {
  if (!canSearch() || !state.query) return;
  clearError();
  const form = new FormData();
  const q = state.query;
  if (q.kind === "image") form.append("image", q.blob, q.name);
  else if (q.kind === "appearance") form.append("appearance_id", String(q.id));
  else {
    form.append("keyframe_id", String(q.keyframe.id));
    form.append("box", q.box.join(","));
  }
  filterFields(form);

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
    showResults(body.sightings, ms);
  } finally {
    if (state.searching === ctl) {
      state.searching = null;
      $("search").textContent = "Search";
      document.querySelector(".results").removeAttribute("aria-busy");
      updateSearchButton();
    }
  }
}

function findSimilar(sighting) {
  return searchAppearance(bestAppearance(sighting));
}

/** Search by a stored appearance ({id, crop_url, camera_id, label}), in the Search view. */
function searchAppearance(app) {
  showView("search", { focus: false });
  setQuery({
    kind: "appearance", id: app.id, cropUrl: app.crop_url, camera: app.camera_id, label: app.label,
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
// Results: summary, timeline, list

function clearResults() {
  state.sightings = [];
  state.selected = -1;
  $("sightings").replaceChildren();
  $("timeline").replaceChildren();
  $("timeline").setAttribute("height", "0");
  $("summary").textContent = "No search yet.";
  $("empty").hidden = false;
  $("sort-wrap").hidden = true;
  closeDetail();
}

function showResults(sightings, ms) {
  state.sightings = sightings.map((s, index) => ({
    ...s, index, t0: Date.parse(s.first_seen), t1: Date.parse(s.last_seen), best: bestAppearance(s),
  }));
  state.selected = -1;
  closeDetail();
  $("empty").hidden = true;
  $("sort-wrap").hidden = state.sightings.length < 2;
  const cams = new Set(state.sightings.map((s) => s.camera_id));
  const hits = state.sightings.reduce((n, s) => n + s.appearances.length, 0);
  const summary = $("summary");
  if (!state.sightings.length) {
    summary.textContent = "No sightings matched. Lower the min score or widen the time range and cameras.";
  } else {
    summary.replaceChildren(
      el("strong", "", `${plural(state.sightings.length, "sighting")} across ${plural(cams.size, "camera")}`),
      el("span", "muted", ` · ${plural(hits, "appearance")} · ${(ms / 1000).toFixed(2)} s`),
    );
  }
  renderTimeline();
  renderList();
  state.generation += 1;
  $("sightings").dataset.generation = String(state.generation);
  $("sightings").scrollTop = 0;
}

const TICK_STEPS = [
  1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5,
  216e5, 432e5, 864e5, 1728e5, 6048e5, 2592e6,
];

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
  const left = 96;
  const right = 16;
  const top = 6;
  const axis = 30;
  const markH = 10;
  const rowGap = 4;

  let t0 = Math.min(...items.map((s) => s.t0));
  let t1 = Math.max(...items.map((s) => s.t1));
  const minSpan = 10_000;
  if (t1 - t0 < minSpan) {
    const mid = (t0 + t1) / 2;
    t0 = mid - minSpan / 2;
    t1 = mid + minSpan / 2;
  }
  const pad = (t1 - t0) * 0.03;
  t0 -= pad;
  t1 += pad;
  const plotW = width - left - right;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;

  // Lanes: one per camera, sightings packed into sub-rows so overlapping marks stay visible.
  const byCamera = new Map();
  for (const s of items) {
    if (!byCamera.has(s.camera_id)) byCamera.set(s.camera_id, []);
    byCamera.get(s.camera_id).push(s);
  }
  const lanes = [...byCamera.keys()].sort().map((camera) => {
    const rows = [];
    const placed = byCamera.get(camera)
      .slice()
      .sort((a, b) => a.t0 - b.t0)
      .map((s) => {
        const x1 = x(s.t0);
        const w = Math.max(6, x(s.t1) - x1);
        let row = rows.findIndex((end) => end + 2 <= x1);
        if (row < 0) {
          if (rows.length < 6) row = rows.push(0) - 1;
          else row = rows.indexOf(Math.min(...rows));
        }
        rows[row] = Math.max(rows[row], x1 + w);
        return { s, x1, w, row };
      });
    return { camera, placed, height: Math.max(30, rows.length * (markH + rowGap) + 14) };
  });
  const plotH = lanes.reduce((h, l) => h + l.height, 0);
  const height = top + plotH + axis;
  root.setAttribute("width", String(width));
  root.setAttribute("height", String(height));
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);

  // Ticks in local time, a step that leaves room for the labels.
  const span = t1 - t0;
  const target = Math.max(2, Math.floor(plotW / 75));
  const step = TICK_STEPS.find((st) => span / st <= target) || TICK_STEPS[TICK_STEPS.length - 1];
  const offset = new Date(t0).getTimezoneOffset() * 60_000;
  const label = step < 6e4 ? fmtTime : step < 864e5 ? fmtHourMin : fmtDayShort;
  const grid = svg("g", { class: "grid" });
  const axisG = svg("g", { class: "axis" });
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) {
    const tx = x(t);
    grid.append(svg("line", { x1: tx, x2: tx, y1: top, y2: top + plotH }));
    axisG.append(svg("line", { x1: tx, x2: tx, y1: top + plotH, y2: top + plotH + 4 }));
    const text = svg("text", { x: tx, y: top + plotH + 16, "text-anchor": "middle" });
    text.textContent = label.format(new Date(t));
    axisG.append(text);
  }
  axisG.append(svg("line", { x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }));
  const day = svg("text", { x: 4, y: top + plotH + 16, class: "axis-day" });
  const d0 = new Date(t0 + pad);
  const d1 = new Date(t1 - pad);
  day.textContent = sameDay(d0, d1) ? fmtDayShort.format(d0) : `${fmtDayShort.format(d0)}–`;
  axisG.append(day);
  root.append(grid);

  let y = top;
  for (const lane of lanes) {
    const g = svg("g", { class: "lane", "data-camera": lane.camera });
    g.append(svg("rect", { class: "lane-bg", x: 0, y, width, height: lane.height }));
    const tip = svg("title"); // the lane's tooltip (marks carry their own)
    tip.textContent = `${lane.camera}: ${plural(lane.placed.length, "sighting")}`;
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
      el("span", "s-first", fmtDateTime.format(new Date(s.first_seen))),
      " → ",
      el("span", "s-last", sameDay(new Date(s.t0), new Date(s.t1))
        ? fmtTime.format(new Date(s.last_seen)) : fmtDateTime.format(new Date(s.last_seen))),
      ` (${fmtDuration(s.t1 - s.t0)})`,
    );
    info.append(line1, line2);
    open.append(info);
    const similar = el("button", "btn btn-small find-similar", "Find similar");
    similar.type = "button";
    similar.disabled = !canSearch();
    similar.title = `Search for the best appearance #${s.best.id}`;
    const watch = el("button", "btn btn-small watch", "Watch for this");
    watch.type = "button";
    watch.disabled = !canSearch();
    watch.title = `Make the best appearance #${s.best.id} an example of a new alert rule`;
    li.append(open, similar, watch);
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
    ["First seen", fmtDateTime.format(new Date(s.first_seen))],
    ["Last seen", fmtDateTime.format(new Date(s.last_seen))],
    ["Duration", fmtDuration(s.t1 - s.t0)],
    ["Best score", s.best_score.toFixed(2)],
    ["Appearances", String(s.appearances.length)],
  ];
  for (const [k, v] of rows) meta.append(el("dt", "", k), el("dd", "", v));
  const similar = $("detail-similar");
  similar.dataset.index = String(s.index);
  similar.disabled = !canSearch();
  similar.textContent = `Find similar to #${s.best.id}`;
  const watch = $("detail-watch");
  watch.dataset.index = String(s.index);
  watch.disabled = !canSearch();
  watch.title = `Make appearance #${s.best.id} an example of a new alert rule`;

  const list = $("detail-appearances");
  list.replaceChildren();
  $("detail-apps-title").textContent = `Appearances (${s.appearances.length})`;
  for (const a of s.appearances) {
    const li = el("li", "");
    const b = el("button", "appearance");
    b.type = "button";
    b.dataset.id = String(a.id);
    b.setAttribute("aria-label", `Show appearance #${a.id} at ${fmtTimeMs.format(new Date(a.ts))}`);
    b.append(lazyImage(a.crop_url, "app-thumb", ""));
    b.append(el("span", "app-time", fmtTimeMs.format(new Date(a.ts))));
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
  img.alt = `Keyframe #${a.keyframe_id} on ${a.camera_id} with appearance #${a.id} boxed`;
  loadInto(img, `${a.keyframe_url}?box=${box}`);
  $("detail-caption").textContent = `Keyframe #${a.keyframe_id} · frame ${a.frame_index} · `
    + `${fmtDateTime.format(new Date(a.ts))} · score ${a.score.toFixed(2)} · `
    + `confidence ${a.confidence.toFixed(2)}`;
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
    time.value = isoToLocal(cam.first_ts);
    time.min = isoToLocal(cam.first_ts);
    time.max = isoToLocal(cam.last_ts);
  }
  state.keyframes = { camera: cam ? cam.id : null, items: [], seen: new Set() };
  $("keyframes").replaceChildren();
  $("kf-more").hidden = true;
  $("kf-status").textContent = cam
    ? `${plural(cam.keyframes, "keyframe")}${cam.first_ts ? `, from ${fmtDateTime.format(new Date(cam.first_ts))}` : ""}`
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
    since = localToIso($("kf-time").value);
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
    const b = el("button", "keyframe");
    b.type = "button";
    b.dataset.id = String(kf.id);
    const when = fmtTimeTenths.format(new Date(kf.ts));
    b.setAttribute("aria-label", `Keyframe #${kf.id} at ${when}, ${plural(kf.appearances, "detection")}`);
    if (kf.image_url) b.append(lazyImage(kf.image_url, "kf-thumb", ""));
    else {
      b.disabled = true;
      b.append(el("span", "kf-noimage", "no image"));
    }
    b.append(el("span", "kf-time", when));
    if (kf.appearances) b.append(el("span", "kf-count", String(kf.appearances)));
    b.addEventListener("click", guarded(() => openKeyframe(kf)));
    grid.append(b);
  }
  const n = state.keyframes.items.length;
  $("kf-status").textContent = n
    ? `${plural(n, "keyframe")} shown; pick one to draw a box.`
    : "No keyframes from that time on.";
  $("kf-more").hidden = body.keyframes.length < KEYFRAME_PAGE;
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
  $("kf-dialog-title").textContent = `Keyframe #${detail.id} · ${detail.camera_id} · `
    + `${fmtDateTime.format(new Date(detail.ts))} · frame ${detail.frame_index}`;
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
    useImage(file);
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
    if (file) useImage(file);
  });
  // A drop that misses the zone must not navigate away from the console.
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => event.preventDefault());
  document.addEventListener("paste", (event) => {
    if (!state.me || !event.clipboardData) return;
    const item = [...event.clipboardData.items].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (!item) return; // plain text goes to whatever input has focus
    event.preventDefault();
    useImage(item.getAsFile(), `pasted.${item.type.split("/")[1] || "png"}`);
  });
  $("query-clear").addEventListener("click", () => setQuery(null));

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
    const mark = event.target.closest(".mark");
    if (mark) select(Number(mark.dataset.index));
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
  let frame = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (state.sightings.length) renderTimeline();
    });
  }).observe(document.querySelector(".timeline-wrap"));
}

function start() {
  hooks.unauthorized = sessionExpired;
  alerts.init({ currentQuery: () => state.query, searchAppearance, canSearch });
  cameras.init();
  wire();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) login(saved);
  else showLogin("");
}

start();
