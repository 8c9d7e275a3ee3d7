// surveil operator console, the Cameras view: every camera with a status light from its
// live-ingest health (what `surveil run` last wrote to the catalog), refreshed every 5 s
// while the view is on screen and the page is visible. Every role may read it.

import { $, API, clearError, el, formatTime, plural, request, showError, state } from "./core.js";

const POLL_MS = 5_000;
/** Health not rewritten for this long (three refreshes) means its writer may be gone. */
const STALE_MS = 3 * POLL_MS;
/** Longest last error shown in the list; the full text is in the cell's title. */
const ERROR_CHARS = 80;
/** States in the order the summary counts them; "none" is a camera without health. */
const ORDER = ["online", "connecting", "stalled", "offline", "stopped", "none"];
const LABEL = {
  online: "online",
  connecting: "connecting",
  stalled: "stalled",
  offline: "offline",
  stopped: "stopped",
  none: "no data",
};
const MEANING = {
  online: "Frames are arriving.",
  connecting: "Opening the stream; no frame yet.",
  stalled: "Connected, but no frame for a while.",
  offline: "The stream failed; reconnecting with back-off.",
  stopped: "Live ingest for this camera was stopped.",
  none: "No live-ingest health recorded: `surveil run` has not read this camera.",
};

const C = {
  cameras: [],
  active: false, // the view is on screen and someone is logged in
  loading: null, // AbortController of the request in flight
  timer: 0,
  skew: 0, // server clock minus ours, ms (from the Date header), when they differ
  loadedAt: null, // Date of the last good answer
  failure: null, // the last refresh's error, shown until one succeeds
  bannered: false, // the error banner shows our failure
  summaryKey: "",
};

// ---------------------------------------------------------------------------------------
// Life cycle, called by app.js

export function init() {
  wire();
}

/** The Cameras view came into sight: load now, then every 5 s. */
export function shown() {
  C.active = true;
  refresh({ loud: true });
}

/** The time zone switched: the rows and the "updated" line say their times again. */
export function zoneChanged() {
  if (C.loadedAt) render();
}

/** Another view came into sight: stop refreshing (what is shown stays until next time). */
export function hidden() {
  C.active = false;
  stop();
}

/** Logged out: stop and forget everything. */
export function leave() {
  hidden();
  Object.assign(C, {
    cameras: [], skew: 0, loadedAt: null, failure: null, bannered: false, summaryKey: "",
  });
  $("cameras").replaceChildren();
  $("cameras-summary").textContent = "No cameras loaded.";
  $("cameras-updated").textContent = "";
  $("cameras-updated").classList.remove("hint");
  $("cameras-empty").hidden = true;
  $("cameras-table").hidden = false;
}

// ---------------------------------------------------------------------------------------
// Loading: one request at a time, the next one 5 s after the last answer

function stop() {
  window.clearTimeout(C.timer);
  C.timer = 0;
  if (C.loading) {
    C.loading.abort();
    C.loading = null;
    $("cameras-main").removeAttribute("aria-busy");
  }
}

function running() {
  return C.active && Boolean(state.key) && document.visibilityState === "visible";
}

function schedule() {
  window.clearTimeout(C.timer);
  C.timer = running() ? window.setTimeout(() => refresh(), POLL_MS) : 0;
}

/** Fetch the cameras; `loud` failures go to the banner, a poll's to the status line. */
async function refresh({ loud = false } = {}) {
  stop();
  if (!running()) return;
  const ctl = new AbortController();
  C.loading = ctl;
  $("cameras-main").setAttribute("aria-busy", "true");
  try {
    const response = await request(`${API}/cameras`, { signal: ctl.signal });
    const body = await response.json();
    if (C.loading !== ctl) return;
    const ours = Date.now();
    const theirs = Date.parse(response.headers.get("Date") || "");
    // The Date header counts whole seconds: only a real difference between clocks counts.
    C.skew = Number.isFinite(theirs) && Math.abs(theirs - ours) > 2_000 ? theirs - ours : 0;
    C.cameras = body.cameras;
    C.loadedAt = new Date(ours);
    C.failure = null;
    if (C.bannered) {
      clearError();
      C.bannered = false;
    }
    render();
  } catch (err) {
    if (err.name === "AbortError" || C.loading !== ctl) return;
    C.failure = err;
    if (loud) {
      showError(err);
      C.bannered = true;
    }
    renderUpdated();
  } finally {
    if (C.loading === ctl) {
      C.loading = null;
      $("cameras-main").removeAttribute("aria-busy");
      schedule();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Rendering

function serverNow() {
  return Date.now() + C.skew;
}

/** "3 s ago", "12 min ago", "5 h ago", or the date when older than a day. */
function ago(ms, now) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 1) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return formatTime(ms, "date");
}

/** What the row shows: the state, whether its health is stale, and why. */
function status(cam, now) {
  const h = cam.health;
  if (!h) return { key: "none", stale: false, age: null };
  const key = Object.hasOwn(LABEL, h.state) && h.state !== "none" ? h.state : "none";
  const updated = Date.parse(h.updated_at);
  const age = Number.isFinite(updated) ? now - updated : null;
  // A stopped camera is not rewritten any more; any other state should be, every few seconds.
  const stale = key !== "stopped" && age !== null && age > STALE_MS;
  return { key, stale, age, updated };
}

function render() {
  const now = serverNow();
  const rows = document.createDocumentFragment();
  const counts = Object.fromEntries(ORDER.map((k) => [k, 0]));
  let stale = 0;
  let disabled = 0;
  for (const cam of C.cameras) {
    const s = status(cam, now);
    counts[s.key] += 1;
    if (s.stale) stale += 1;
    if (!cam.enabled) disabled += 1;
    rows.append(row(cam, s, now));
  }
  $("cameras").replaceChildren(rows);
  const none = !C.cameras.length;
  $("cameras-empty").hidden = !none;
  $("cameras-table").hidden = none;
  renderSummary(counts, stale, disabled);
  renderUpdated();
}

function row(cam, s, now) {
  const h = cam.health;
  const tr = el("tr", "camera");
  tr.dataset.id = cam.id;
  tr.dataset.state = s.key;
  tr.dataset.stale = String(s.stale);
  tr.classList.toggle("disabled", !cam.enabled);
  tr.classList.toggle("stale", s.stale);

  // Status: the light is decoration; the words say the same for everyone.
  const st = el("td", "c-status");
  st.title = MEANING[s.key];
  const light = el("span", `light light-${s.key}`);
  light.setAttribute("aria-hidden", "true");
  st.append(light, el("span", "c-state", LABEL[s.key]));
  if (s.stale) {
    const tag = el("span", "tag tag-stale", "stale");
    tag.title = `Health last written ${ago(s.updated, now)} (${formatTime(h.updated_at)}), `
      + "though it is rewritten every few seconds: is `surveil run` still running?";
    st.append(tag);
  }
  tr.append(st);

  const name = el("th", "c-camera");
  name.scope = "row";
  const line = el("span", "c-line");
  line.append(el("span", "c-id", cam.id));
  if (cam.name && cam.name !== cam.id) line.append(el("span", "c-name", cam.name));
  if (!cam.enabled) line.append(el("span", "tag", "disabled"));
  name.append(line);
  if (cam.url) {
    const url = el("span", "c-url", cam.url);
    url.title = cam.url;
    name.append(url);
  }
  tr.append(name);

  const last = el("td", "c-last");
  if (h && h.last_frame_at) {
    const t = el("time", "", ago(Date.parse(h.last_frame_at), now));
    t.dateTime = h.last_frame_at;
    t.title = formatTime(h.last_frame_at, "datetime-ms");
    last.append(t);
  } else {
    last.append(el("span", "muted", h ? "never" : "—"));
  }
  tr.append(last);

  const num = (cls, value) => el("td", `num ${cls}`, h ? value() : "—");
  tr.append(
    num("c-fps", () => h.fps.toFixed(1)),
    num("c-kps", () => h.keyframes_per_s.toFixed(2)),
    num("c-keyframes", () => String(h.keyframes)),
    num("c-drops", () => String(h.drops)),
    num("c-reconnects", () => String(h.reconnects)),
  );

  const error = el("td", "c-error");
  if (h && h.last_error) {
    const full = h.last_error;
    const short = full.length > ERROR_CHARS ? `${full.slice(0, ERROR_CHARS - 1).trimEnd()}…` : full;
    const text = el("span", "c-error-text", short);
    text.title = full;
    // An error from before the camera came back is history, not the present.
    if (s.key === "online") text.classList.add("past");
    error.append(text);
  }
  tr.append(error);
  return tr;
}

function renderSummary(counts, stale, disabled) {
  const n = C.cameras.length;
  const parts = ORDER.filter((k) => counts[k]).map((k) => `${counts[k]} ${LABEL[k]}`);
  const head = n ? `${plural(n, "camera")}: ${parts.join(", ")}` : "No cameras yet.";
  const extra = [];
  if (stale) extra.push(`${stale} stale`);
  if (disabled) extra.push(`${disabled} disabled`);
  const tail = extra.length ? ` · ${extra.join(" · ")}` : "";
  // The summary is a live region: rewrite it only when it says something new.
  if (`${head}${tail}` === C.summaryKey) return;
  C.summaryKey = `${head}${tail}`;
  const summary = $("cameras-summary");
  summary.replaceChildren(el("strong", "", head));
  if (tail) summary.append(el("span", "muted", tail));
}

function renderUpdated() {
  const box = $("cameras-updated");
  const failed = Boolean(C.failure);
  box.classList.toggle("hint", failed);
  if (failed) {
    box.textContent = `Refresh failed: ${C.failure.message}`
      + `${C.loadedAt ? ` (showing ${formatTime(C.loadedAt, "time")})` : ""}; retrying every 5 s.`;
  } else if (C.loadedAt) {
    box.textContent = `Updated ${formatTime(C.loadedAt, "time")} · every 5 s`;
  }
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("cameras-refresh").addEventListener("click", () => {
    clearError();
    C.bannered = false;
    refresh({ loud: true });
  });
  // No refreshing for a page nobody looks at; catch up as soon as it is looked at again.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") stop();
    else if (C.active && state.key) refresh();
  });
}
