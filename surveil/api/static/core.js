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
// Formatting

export const fmtDateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
export const fmtTime = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
export const fmtTimeMs = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
  hourCycle: "h23",
});
export const fmtTimeTenths = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 1,
  hourCycle: "h23",
});
export const fmtHourMin = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
export const fmtDayShort = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

export function fmtDuration(ms) {
  if (ms <= 0) return "single frame";
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function fmtRange(first, last) {
  const a = new Date(first);
  const b = new Date(last);
  const end = sameDay(a, b) ? fmtTime.format(b) : fmtDateTime.format(b);
  return `${fmtDateTime.format(a)} → ${end}`;
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** datetime-local value (local wall time) -> ISO 8601 UTC; "" stays "". */
export function localToIso(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ApiError(0, "invalid_input", `"${value}" is not a time`);
  return d.toISOString();
}

/** ISO 8601 -> datetime-local value in local wall time, to the second. */
export function isoToLocal(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T`
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
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
