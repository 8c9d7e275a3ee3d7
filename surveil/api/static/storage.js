// surveil operator console, the Storage panel of the Cameras view: bytes stored per camera,
// bytes per day, and the days of footage the budget holds (GET /api/v1/storage, what
// `surveil storage estimate` prints). Loaded when asked for: it sums every camera's bytes,
// so it is not polled. Operators and admins only; viewers see why not.

import { $, API, canWrite, el, formatTime, guarded, request } from "./core.js";

/** 1234567 -> "1.2 MB" (SI units, as disks are sold; as the CLI prints them). */
export function humanBytes(n) {
  if (n === null || n === undefined) return "–";
  let value = n;
  for (const unit of ["B", "kB", "MB", "GB", "TB"]) {
    if (Math.abs(value) < 1000 || unit === "TB") {
      return unit === "B" ? `${Math.round(value)} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${n} B`;
}

export function init() {
  $("storage-load").addEventListener("click", guarded(load));
}

/** The view came into sight: say who may load it. */
export function shown() {
  const allowed = canWrite();
  $("storage-load").disabled = !allowed;
  $("storage-note").textContent = allowed
    ? "Sums every camera's footage on request; rows stored before sizes were recorded are sized once."
    : "The storage estimate needs an operator or admin key.";
}

/** Logged out: forget what was shown. */
export function leave() {
  $("storage-rows").replaceChildren();
  $("storage-summary").textContent = "";
  $("storage-table").hidden = true;
}

async function load() {
  $("storage-panel").setAttribute("aria-busy", "true");
  $("storage-summary").textContent = "Estimating…";
  try {
    const body = await (await request(`${API}/storage`)).json();
    render(body);
  } catch (err) {
    $("storage-summary").textContent = "";
    throw err;
  } finally {
    $("storage-panel").removeAttribute("aria-busy");
  }
}

function render(body) {
  const budget = body.budget_bytes ? humanBytes(body.budget_bytes) : "no budget (retention.max_bytes)";
  const parts = [
    `${humanBytes(body.bytes_stored)} stored, ${humanBytes(body.bytes_per_day)} a day; budget ${budget}`,
  ];
  if (body.days_that_fit !== null) parts.push(`${body.days_that_fit} days of footage fit`);
  if (body.budget_full_at) parts.push(`budget reached ${formatTime(body.budget_full_at, "date")}`);
  if (body.disk_full_at) parts.push(`disk full ${formatTime(body.disk_full_at, "date")}`);
  else if (body.disk_free_bytes !== null) parts.push(`${humanBytes(body.disk_free_bytes)} free on disk`);
  $("storage-summary").textContent = parts.join(" · ");
  $("storage-rows").replaceChildren(...body.cameras.map(row));
  $("storage-table").hidden = body.cameras.length === 0;
}

function row(cam) {
  const tr = el("tr");
  tr.dataset.camera = cam.camera_id;
  const cells = [
    [cam.camera_id, ""],
    [humanBytes(cam.bytes), "num"],
    [humanBytes(cam.bytes_per_day), "num"],
    [String(cam.days_stored), "num"],
    [cam.days_that_fit === null ? "–" : String(cam.days_that_fit), "num"],
    [cam.budget_bytes ? humanBytes(cam.budget_bytes) : "–", "num"],
  ];
  for (const [text, cls] of cells) tr.append(el("td", cls, text));
  return tr;
}
