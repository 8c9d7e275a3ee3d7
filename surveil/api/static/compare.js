// surveil operator console: compare two crops side by side (POST /api/v1/compare).
// Self-contained: adds a "Compare" button beside the user's name and a dialog holding two
// crops, an optional label, and the answer: similarity, threshold, space and verdict.
// Every comparison is audited by the server, like a search.

import { $, API, ApiError, request, state } from "./core.js";

const WRITE_ROLES = new Set(["operator", "admin"]);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** One side of the comparison: a file chooser and the chosen crop's preview. */
function side(name) {
  const input = el("input", {
    id: `compare-file-${name}`, type: "file", class: "visually-hidden",
    accept: "image/jpeg,image/png,image/webp,image/bmp",
  });
  const preview = el("img", { id: `compare-preview-${name}`, class: "compare-preview", alt: `Crop ${name.toUpperCase()}` });
  preview.hidden = true;
  const choose = el("label", { for: input.id, class: "btn btn-small" }, `Choose crop ${name.toUpperCase()}…`);
  const box = el("div", { class: "compare-side drop-zone" }, preview, choose, input);
  let url = null;
  input.addEventListener("change", () => {
    if (url) URL.revokeObjectURL(url);
    const file = input.files && input.files[0];
    url = file ? URL.createObjectURL(file) : null;
    preview.hidden = !url;
    if (url) preview.src = url;
  });
  return { box, input };
}

function build() {
  const a = side("a");
  const b = side("b");
  const label = el("input", { id: "compare-label", type: "text", maxlength: "64", placeholder: "auto (detector)", spellcheck: "false" });
  const result = el("p", { id: "compare-result", class: "compare-result", "aria-live": "polite" });
  const error = el("p", { id: "compare-error", class: "error-box", role: "alert" });
  error.hidden = true;
  const run = el("button", { id: "compare-run", type: "button", class: "btn btn-primary" }, "Compare");
  const close = el("button", { id: "compare-close", type: "button", class: "btn btn-ghost" }, "Close");
  const dialog = el(
    "dialog", { id: "compare-dialog", class: "compare-dialog", "aria-labelledby": "compare-title" },
    el("h2", { id: "compare-title" }, "Compare two crops"),
    el("div", { class: "compare-sides" }, a.box, b.box),
    el("div", { class: "row" }, el("label", { for: label.id }, "Label (both crops)"), label),
    error, result,
    el("div", { class: "compare-actions" }, run, close),
  );
  document.body.append(dialog);
  close.addEventListener("click", () => dialog.close());
  run.addEventListener("click", () => compare(a.input, b.input, label, run, result, error));
  return dialog;
}

async function compare(inA, inB, label, run, result, error) {
  const fileA = inA.files && inA.files[0];
  const fileB = inB.files && inB.files[0];
  error.hidden = true;
  result.textContent = "";
  delete result.dataset.same;
  if (!fileA || !fileB) {
    error.textContent = "Choose both crops first.";
    error.hidden = false;
    return;
  }
  const form = new FormData();
  form.append("a", fileA);
  form.append("b", fileB);
  if (label.value.trim()) form.append("label", label.value.trim());
  run.disabled = true;
  try {
    const response = await request(`${API}/compare`, { method: "POST", body: form });
    const body = await response.json();
    const verdict = body.same ? "same object likely" : "same object unlikely";
    const sign = body.same ? "≥" : "<";
    result.textContent = `${verdict}: similarity ${body.similarity.toFixed(3)} ${sign} threshold `
      + `${body.threshold.toFixed(3)} (${body.space} space)`;
    result.dataset.same = String(body.same);
  } catch (err) {
    error.textContent = err instanceof ApiError ? err.message : "Comparison failed.";
    error.hidden = false;
  } finally {
    run.disabled = false;
  }
}

function install() {
  const whoami = $("whoami");
  if (!whoami) return;
  let dialog = null;
  const open = el("button", { id: "compare-open", type: "button", class: "btn btn-ghost" }, "Compare");
  open.title = "Compare two crops: are they the same object?";
  whoami.insertBefore(open, $("logout"));
  open.addEventListener("click", () => {
    dialog = dialog || build();
    const allowed = Boolean(state.me && WRITE_ROLES.has(state.me.role));
    $("compare-run").disabled = !allowed;
    const error = $("compare-error");
    error.hidden = allowed;
    if (!allowed) {
      error.textContent = `Compare needs the operator role; this key is a ${state.me ? state.me.role : "viewer"} key.`;
    }
    dialog.showModal();
  });
}

install();
