// surveil operator console, operator feedback on search results: "That's it" / "Not it"
// on each sighting (stored per search, audited), and "More like the confirmed ones",
// which re-runs the search with its verdicts (confirmed hits join the query, rejected
// ones and their near-duplicates drop). Verdicts given on a re-run's results count for
// the original search, so an operator can refine it several times in a row.

import { $, API, button, canWrite, el, guarded, plural, request, withQuery } from "./core.js";

const F = {
  ctx: null, // {showResults, limit} from app.js
  origin: null, // audit id of the search the verdicts belong to
  verdicts: new Map(), // track id -> "confirmed" | "rejected"
  busy: false,
};

export function init(ctx) {
  F.ctx = ctx;
}

/** A new search ran (its audit id from X-Surveil-Audit-Id): verdicts start afresh. */
export function searched(auditId) {
  F.origin = auditId ? Number(auditId) : null;
  F.verdicts = new Map();
  renderBar();
}

/** Add the verdict buttons to one result card (sightings with a track only). */
export function decorate(li, sighting) {
  if (sighting.track_id == null || F.origin == null) return;
  const box = el("span", "fb-buttons");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", "Is this the one you are looking for?");
  for (const [verdict, text, title] of [
    ["confirmed", "✓ That's it", "Confirm: this sighting is the person or object searched for"],
    ["rejected", "✗ Not it", "Reject: this sighting is someone or something else"],
  ]) {
    const b = button(text, `btn btn-small fb-${verdict}`, { title });
    b.dataset.verdict = verdict;
    b.disabled = !canWrite();
    b.setAttribute("aria-pressed", String(F.verdicts.get(sighting.track_id) === verdict));
    b.addEventListener("click", (event) => {
      event.stopPropagation(); // not a click that opens the sighting
      guarded(toggle)(sighting.track_id, verdict);
    });
    box.append(b);
  }
  li.append(box);
}

/** Mark (or, clicked again, clear) a verdict on one track for the current search. */
async function toggle(track, verdict) {
  const path = `${API}/searches/${F.origin}/feedback`;
  if (F.verdicts.get(track) === verdict) {
    await request(withQuery(path, { track_id: track }), { method: "DELETE" });
    F.verdicts.delete(track);
  } else {
    await request(path, { method: "PUT", json: { verdict, track_id: track } });
    F.verdicts.set(track, verdict);
  }
  for (const li of document.querySelectorAll(`#sightings .sighting[data-track="${track}"]`)) {
    for (const b of li.querySelectorAll(".fb-buttons .btn")) {
      b.setAttribute("aria-pressed", String(F.verdicts.get(track) === b.dataset.verdict));
    }
  }
  renderBar();
}

/** The "More like the confirmed ones" bar under the summary, with the verdict counts. */
function renderBar() {
  let bar = $("fb-bar");
  if (!bar) {
    bar = el("div", "fb-bar");
    bar.id = "fb-bar";
    $("summary").after(bar);
  }
  const counts = { confirmed: 0, rejected: 0 };
  for (const v of F.verdicts.values()) counts[v] += 1;
  bar.hidden = F.origin == null;
  const rerun = button("More like the confirmed ones", "btn btn-small", {
    title: "Search again: confirmed sightings join the example, rejected ones drop out",
  });
  rerun.id = "fb-rerun";
  rerun.disabled = !canWrite() || F.busy || counts.confirmed + counts.rejected === 0;
  rerun.addEventListener("click", guarded(rerunSearch));
  const said = el(
    "span",
    "muted small",
    `${plural(counts.confirmed, "confirmed")}, ${plural(counts.rejected, "rejected")}`,
  );
  said.id = "fb-counts";
  bar.replaceChildren(rerun, said);
}

/** Re-run the search with its verdicts and show the result in place of the last one. */
async function rerunSearch() {
  if (F.origin == null || F.busy) return;
  F.busy = true;
  renderBar();
  const started = performance.now();
  try {
    const path = withQuery(`${API}/searches/${F.origin}/rerun`, { limit: F.ctx.limit() || undefined });
    const response = await request(path, { method: "POST" });
    const body = await response.json();
    F.ctx.showResults(body, performance.now() - started); // decorate() keeps the verdicts shown
  } finally {
    F.busy = false;
    renderBar();
  }
}

// ---------------------------------------------------------------------------------------
// Alerts: was this alert right? Rules: calibrate the threshold from those verdicts.

/** "Right alert" / "Wrong alert" next to the alert detail's Acknowledge button. */
export function alertVerdict(alert) {
  let box = $("fb-alert");
  if (!box) {
    box = el("span", "fb-buttons");
    box.id = "fb-alert";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Was this alert right?");
    $("alert-similar").after(box);
  }
  const buttons = [
    ["confirmed", "✓ Right alert", "It is the person or object the rule watches for"],
    ["rejected", "✗ Wrong alert", "Someone or something else: a label for calibrating the rule"],
  ].map(([verdict, text, title]) => {
    const b = button(text, `btn btn-small fb-${verdict}`, { title });
    b.disabled = !canWrite();
    b.setAttribute("aria-pressed", "false");
    b.addEventListener("click", guarded(async () => {
      await request(`${API}/alerts/${alert.id}/feedback`, { method: "PUT", json: { verdict } });
      for (const other of box.querySelectorAll(".btn")) other.setAttribute("aria-pressed", String(other === b));
    }));
    return b;
  });
  box.replaceChildren(...buttons);
}

/** A "Calibrate" button on a rule card: propose a threshold, apply it only when confirmed. */
export function ruleCalibrate(actions, rule, reload) {
  const b = button("Calibrate", "btn btn-small calibrate", {
    title: canWrite() ? "Threshold from the alerts marked right or wrong" : "Needs the operator role",
    label: `Calibrate rule ${rule.name}`,
  });
  b.disabled = !canWrite();
  b.addEventListener("click", (event) => {
    event.stopPropagation();
    guarded(calibrate)(rule, reload);
  });
  actions.append(b);
}

async function calibrate(rule, reload) {
  const path = `${API}/rules/${rule.id}/calibration`;
  const answer = await (await request(path, { method: "POST", json: {} })).json();
  if (!answer.enough_labels) {
    window.alert(`Too few labels to calibrate “${rule.name}”: mark ${answer.needed.confirmed} more `
      + `alerts right and ${answer.needed.rejected} more wrong first.`);
    return;
  }
  if (answer.threshold == null) {
    window.alert(`No threshold reaches precision ${answer.precision_target} on these labels.`);
    return;
  }
  const text = `Rule “${rule.name}”: threshold now ${answer.current.toFixed(3)}, `
    + `proposed ${answer.threshold.toFixed(4)} (precision ${answer.precision.toFixed(2)}, `
    + `recall ${answer.recall.toFixed(2)}).\n\nOn the labelled hits it would catch `
    + `${answer.caught.length}, miss ${answer.missed.length} and raise `
    + `${plural(answer.false_alarms.length, "false alarm")}.\n\nApply this threshold?`;
  if (!window.confirm(text)) return;
  await request(withQuery(path, { apply: true }), { method: "POST", json: {} });
  await reload();
}
