// surveil operator console, shared core: HTTP with the key, authenticated images, formatting,
// DOM helpers and the one error banner. Imported by app.js (log in, search) and alerts.js.
// Every API call carries the key as a bearer header; images are fetched the same way and
// shown through blob: URLs (the page's CSP allows img-src 'self' blob: data:).

export const API = "/api/v1";
const WRITE_ROLES = new Set(["operator", "admin"]);
const BLOB_CACHE_MAX = 800;
const SVG_NS = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

/** What every part of the console shares; app.js and alerts.js keep their own state too. */
export const state = {
  key: null,
  me: null,
  cameras: [],
};

/** Set by app.js: what to do when the server stops accepting the key. */
export const hooks = { unauthorized: null };

// ---------------------------------------------------------------------------------------
// HTTP

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export async function errorFrom(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      return new ApiError(response.status, body.error.code || "error", body.error.message);
    }
  } catch {
    // not JSON: fall through to the status line
  }
  const text = response.statusText || "request failed";
  return new ApiError(response.status, `http_${response.status}`, `${response.status} ${text}`);
}

export async function request(path, { method = "GET", body, json, signal, key = state.key } = {}) {
  let response;
  const headers = { Authorization: `Bearer ${key}` };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  try {
    response = await fetch(path, { method, body, signal, headers, cache: "default" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "Could not reach the server. Check the connection and retry.");
  }
  if (!response.ok) {
    const err = await errorFrom(response);
    if (response.status === 401 && key === state.key && state.key && hooks.unauthorized) {
      hooks.unauthorized(err);
    }
    throw err;
  }
  return response;
}

export async function getJson(path, options) {
  const response = await request(path, options);
  return response.json();
}

export function withQuery(path, params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") qs.append(k, String(v));
  }
  const s = qs.toString();
  return s ? `${path}?${s}` : path;
}

// ---------------------------------------------------------------------------------------
// Authenticated images: fetched once, kept as blob: URLs, loaded when scrolled into view.

const blobUrls = new Map(); // API url -> Promise<blob: url>

export function authedImageUrl(url) {
  let entry = blobUrls.get(url);
  if (entry) {
    blobUrls.delete(url); // re-insert: most recently used last
    blobUrls.set(url, entry);
    return entry;
  }
  entry = request(url)
    .then((r) => r.blob())
    .then((blob) => URL.createObjectURL(blob));
  entry.catch(() => blobUrls.delete(url));
  blobUrls.set(url, entry);
  while (blobUrls.size > BLOB_CACHE_MAX) {
    const [oldest, promise] = blobUrls.entries().next().value;
    blobUrls.delete(oldest);
    promise.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return entry;
}

export function clearImageCache() {
  for (const promise of blobUrls.values()) promise.then((u) => URL.revokeObjectURL(u), () => {});
  blobUrls.clear();
}

export function loadInto(img, url) {
  img.dataset.src = url;
  img.classList.remove("broken");
  img.classList.add("loading");
  authedImageUrl(url).then(
    (blobUrl) => {
      if (img.dataset.src !== url) return;
      img.src = blobUrl;
      img.classList.remove("loading");
    },
    (err) => {
      if (img.dataset.src !== url) return;
      img.classList.remove("loading");
      img.classList.add("broken");
      img.title = err.message || "image unavailable";
    },
  );
}

const lazy = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      lazy.unobserve(entry.target);
      loadInto(entry.target, entry.target.dataset.lazy);
    }
  },
  { rootMargin: "300px" },
);

export function lazyImage(url, className, alt = "") {
  const img = document.createElement("img");
  img.className = className;
  img.alt = alt;
  img.decoding = "async";
  img.dataset.lazy = url;
  lazy.observe(img);
  return img;
}

// ---------------------------------------------------------------------------------------
// Times: one zone everywhere, always labelled. UTC by default, as the CLI and the API speak;
// the header's switch shows local time instead (remembered in localStorage). Every time
// the console shows goes through formatTime, and every time typed into a date field is
// read in the same zone (inputToIso) and sent with that zone's offset.

const ZONE_KEY = "surveil.zone";
const ZONES = ["utc", "local"];
const zoneListeners = new Set();

function savedZone() {
  try {
    const saved = localStorage.getItem(ZONE_KEY);
    return ZONES.includes(saved) ? saved : "utc";
  } catch {
    return "utc"; // storage refused (privacy settings): UTC, not remembered
  }
}

let zoneMode = savedZone();

/** "utc" or "local": the zone every time is shown and typed in. */
export function timeZone() {
  return zoneMode;
}

/** Switch zones, remember the choice, and let every view redraw (listeners get old, new). */
export function setTimeZone(mode) {
  if (!ZONES.includes(mode) || mode === zoneMode) return;
  const before = zoneMode;
  zoneMode = mode;
  try {
    localStorage.setItem(ZONE_KEY, mode);
  } catch {
    // not remembered, still switched
  }
  for (const fn of zoneListeners) fn(before, mode);
  refreshZoneTags();
}

export function onTimeZoneChange(fn) {
  zoneListeners.add(fn);
}

const pad2 = (n) => String(n).padStart(2, "0");
const pad3 = (n) => String(n).padStart(3, "0");

function toMs(value) {
  if (typeof value === "number") return value;
  if (value instanceof Date) return value.getTime();
  return Date.parse(value);
}

/** Minutes the zone is ahead of UTC at `ms`: 0 in UTC, the browser's (DST included) in local. */
function offsetMinutes(ms, mode = zoneMode) {
  return mode === "utc" ? 0 : -new Date(ms).getTimezoneOffset();
}

function offsetText(minutes) {
  const m = Math.abs(minutes);
  return `${minutes < 0 ? "-" : "+"}${pad2(Math.floor(m / 60))}:${pad2(m % 60)}`;
}

/** The zone's label at a time: "UTC", or local time's offset, e.g. "UTC+01:00". */
export function zoneLabel(at = Date.now(), mode = zoneMode) {
  return mode === "utc" ? "UTC" : `UTC${offsetText(offsetMinutes(toMs(at), mode))}`;
}

/** The browser's own zone, by name (e.g. "Europe/Berlin"). */
export function localZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "this computer's zone";
}

/** Wall-clock parts of a time in the zone (month 1-12). */
export function zoneParts(value, mode = zoneMode) {
  const ms = toMs(value);
  const d = new Date(ms + offsetMinutes(ms, mode) * 60_000);
  return {
    year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
    hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(),
    ms: d.getUTCMilliseconds(),
  };
}

/** The epoch ms of a wall-clock time in the zone (month 1-12; overflowing fields roll over). */
export function zoneTime(year, month, day = 1, hour = 0, minute = 0, second = 0, ms = 0, mode = zoneMode) {
  if (mode === "utc") return Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return new Date(year, month - 1, day, hour, minute, second, ms).getTime();
}

/** What each style shows; the zone label is left to the axis for its tick labels. */
const STYLES = {
  datetime: { date: true, time: "s", zone: true },
  "datetime-ms": { date: true, time: "ms", zone: true },
  time: { time: "s", zone: true },
  "time-ms": { time: "ms", zone: true },
  "time-tenths": { time: "tenths", zone: true },
  "clock-tenths": { time: "tenths" }, // on a keyframe thumbnail: the grid says the zone
  date: { date: true, zone: true },
  "tick-s": { time: "s" },
  "tick-m": { time: "m" },
  "tick-date": { date: true },
  "tick-month": { month: true },
  "tick-year": { year: true },
};

/**
 * The one way the console shows a time: "2026-03-01 10:00:03 UTC" (or, switched to local
 * time, "2026-03-01 11:00:03 UTC+01:00"). `value`: ISO string, epoch ms or Date.
 */
export function formatTime(value, style = "datetime") {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return "—";
  const spec = STYLES[style] || STYLES.datetime;
  const p = zoneParts(ms);
  if (spec.year) return String(p.year);
  if (spec.month) return `${p.year}-${pad2(p.month)}`;
  const out = [];
  if (spec.date) out.push(`${p.year}-${pad2(p.month)}-${pad2(p.day)}`);
  if (spec.time) {
    let t = `${pad2(p.hour)}:${pad2(p.minute)}`;
    if (spec.time !== "m") t += `:${pad2(p.second)}`;
    if (spec.time === "ms") t += `.${pad3(p.ms)}`;
    if (spec.time === "tenths") t += `.${Math.floor(p.ms / 100)}`;
    out.push(t);
  }
  if (spec.zone) out.push(zoneLabel(ms));
  return out.join(" ");
}

export function sameDay(a, b) {
  const p = zoneParts(a);
  const q = zoneParts(b);
  return p.year === q.year && p.month === q.month && p.day === q.day;
}

export function fmtDuration(ms) {
  if (ms <= 0) return "single frame";
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** "2026-03-01 10:00:03 UTC → 10:00:09 UTC" (the date again only when it changes). */
export function fmtRange(first, last) {
  const end = sameDay(first, last) ? formatTime(last, "time") : formatTime(last);
  return `${formatTime(first)} → ${end}`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** RFC 3339 with the zone's offset: 2026-03-01T10:00:03Z, or ...T11:00:03+01:00 in local. */
function isoWithOffset(value, mode = zoneMode) {
  const ms = toMs(value);
  const p = zoneParts(ms, mode);
  const frac = p.ms ? `.${pad3(p.ms)}` : "";
  const offset = mode === "utc" ? "Z" : offsetText(offsetMinutes(ms, mode));
  return `${p.year}-${pad2(p.month)}-${pad2(p.day)}T${pad2(p.hour)}:${pad2(p.minute)}:`
    + `${pad2(p.second)}${frac}${offset}`;
}

/** A date field's value (wall time in the zone shown) -> RFC 3339 with its offset; "" stays "". */
export function inputToIso(value, mode = zoneMode) {
  if (!value) return "";
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) throw new ApiError(0, "invalid_input", `"${value}" is not a time`);
  const [, y, mo, d, h, mi, s = "0", frac = "0"] = m;
  const ms = zoneTime(+y, +mo, +d, +h, +mi, +s, Number(frac.padEnd(3, "0")), mode);
  return isoWithOffset(ms, mode);
}

/** A time -> a date field's value: wall time in the zone shown, to the second. */
export function isoToInput(value, mode = zoneMode) {
  const p = zoneParts(value, mode);
  return `${p.year}-${pad2(p.month)}-${pad2(p.day)}T${pad2(p.hour)}:${pad2(p.minute)}:${pad2(p.second)}`;
}

/**
 * Each date field's label says the zone its value is read in: "UTC", or in local time the
 * offset at the time typed (summer and winter differ), now's when it is empty.
 */
export function refreshZoneTags() {
  for (const tag of document.querySelectorAll("label .zone-tag")) {
    const input = document.getElementById(tag.closest("label").htmlFor);
    let at = Date.now();
    try {
      if (input && input.value) at = Date.parse(inputToIso(input.value));
    } catch {
      // half typed: keep now's offset
    }
    tag.textContent = zoneLabel(at);
  }
}

/** After a zone switch: a date field shows the same instant, in the new zone. */
export function rezoneInput(input, before, after) {
  for (const attr of ["value", "min", "max"]) {
    const v = input[attr];
    if (!v) continue;
    try {
      input[attr] = isoToInput(inputToIso(v, before), after);
    } catch {
      // a half-typed value stays as it is
    }
  }
}

/** An appearance in words, without its internal id: "this person (cam09, 10:00:03 UTC)". */
export function describeAppearance({ label, camera_id: camera, ts }, style = "time") {
  let what = "this appearance";
  if (label === "motion") what = "this moving object";
  else if (label) what = `this ${label}`;
  const when = ts ? `, ${formatTime(ts, style)}` : "";
  return `${what} (${camera}${when})`;
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** One camera as a labelled checkbox (name "camera"): the search filter and the rule form. */
export function cameraCheckbox(cam, ...details) {
  const row = el("label", "check");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.name = "camera";
  box.value = cam.id;
  row.append(box, el("span", "", cam.id), ...details);
  if (!cam.enabled) row.append(el("span", "tag", "disabled"));
  return row;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

export function button(text, className, { title, label } = {}) {
  const b = el("button", className, text);
  b.type = "button";
  if (title) b.title = title;
  if (label) b.setAttribute("aria-label", label);
  return b;
}

export function scoreClass(score) {
  if (score >= 0.8) return "score-high";
  if (score >= 0.6) return "score-mid";
  return "score-low";
}

/** Operators and admins may search and manage alert rules; viewers only read. */
export function canWrite() {
  return Boolean(state.me && WRITE_ROLES.has(state.me.role));
}

// ---------------------------------------------------------------------------------------
// Uploads: a crop is checked in the browser the way the server checks it, before it is
// shown or sent (by its first bytes, whatever its name or type says, and by its size).

const ascii = (bytes, from, to) => String.fromCharCode(...bytes.subarray(from, to));
const IMAGE_MAGIC = [
  (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff, // JPEG
  (b) => [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((v, i) => b[i] === v), // PNG
  (b) => ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 12) === "WEBP", // WebP
  (b) => b[0] === 0x42 && b[1] === 0x4d, // BMP
];

/** 2097152 -> "2,097,152": exact, the same in every locale. */
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

function fmtBytes(n) {
  if (n < 1024) return plural(n, "byte");
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
}

/** Why `file` cannot be an example crop, in words naming it, or null when it can. */
export async function imageFileProblem(file, name) {
  if (!file.size) return `"${name}" is empty: choose a JPEG, PNG, WebP or BMP image.`;
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  if (!IMAGE_MAGIC.some((test) => test(head))) {
    return `"${name}" is not a JPEG, PNG, WebP or BMP image: its content does not start like `
      + "one, whatever its name says. Nothing was uploaded.";
  }
  const limit = state.me && state.me.max_upload_bytes;
  if (limit && file.size > limit) {
    return `"${name}" is ${grouped(file.size)} bytes, over the server's upload limit of `
      + `${grouped(limit)} bytes (${fmtBytes(limit)}, api.max_upload_bytes): crop it to the `
      + "object. Nothing was uploaded.";
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Messages: one banner (#error) under the header, whichever view is shown.

export function showError(err) {
  if (err && err.name === "AbortError") return;
  const box = $("error");
  box.replaceChildren();
  const code = err && err.code && !String(err.code).startsWith("http_") ? err.code : null;
  if (code) box.append(el("strong", "error-code", code.replace(/_/g, " ")), " ");
  box.append(document.createTextNode(err && err.message ? err.message : String(err)));
  box.hidden = false;
}

export function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

/** Run an async handler; its failure becomes a visible message, never an unhandled rejection. */
export function guarded(fn) {
  return (...args) => {
    Promise.resolve()
      .then(() => fn(...args))
      .catch(showError);
  };
}
