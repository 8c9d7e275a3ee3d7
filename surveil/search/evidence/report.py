"""report.html: the archive's manifest for a human, self-contained and escaped throughout.

Images are referenced by their member names (relative, inside the archive); no script,
no external resource. Every text from the catalog or the operator is HTML-escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#111}"
    "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:4px;"
    "vertical-align:top;font-size:13px}th{background:#eee;text-align:left}"
    "img.crop{max-height:160px}img.frame{max-width:360px}code{word-break:break-all}"
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _img(name: str | None, cls: str) -> str:
    return f'<img class="{cls}" src="{_e(name)}" alt="{_e(name)}">' if name else "(missing)"


def _text(value: object) -> str:
    """A value as plain text (the caller escapes it once)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


def _facts(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{_e(k)}</th><td><code>{_e(_text(v))}</code></td></tr>" for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _items(manifest: dict[str, Any]) -> str:
    files = manifest.get("files", {})
    head = (
        "<tr><th>#</th><th>crop</th><th>keyframe</th><th>camera</th><th>time (UTC)</th>"
        "<th>box</th><th>label</th><th>score</th><th>SHA-256</th></tr>"
    )
    rows = []
    for n, item in enumerate(manifest["items"], start=1):
        hashes = "<br>".join(
            f"{_e(name)}: <code>{_e(files.get(name, {}).get('sha256'))}</code>"
            for name in (item["crop"], item["keyframe"])
            if name
        )
        rows.append(
            f"<tr><td>{n}</td><td>{_img(item['crop'], 'crop')}</td>"
            f"<td>{_img(item['keyframe'], 'frame')}</td><td>{_e(item['camera_id'])}</td>"
            f"<td>{_e(item['ts'])}</td><td>{_e(item['box'])}</td><td>{_e(item['label'])}</td>"
            f"<td>{_e(item['score'])}</td><td>{hashes}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _path(path: dict[str, Any]) -> str:
    """The legs in time order, each followed by the hop to the next camera."""
    head = (
        "<tr><th>leg</th><th>camera</th><th>from (UTC)</th><th>to (UTC)</th><th>tracks</th>"
        "<th>best score</th><th>seen elsewhere at the same time (tracks)</th></tr>"
    )
    rows = []
    hops = path.get("hops", [])
    for n, leg in enumerate(path.get("legs", []), start=1):
        elsewhere = _text(leg["overlaps"]) if leg["overlaps"] else ""
        rows.append(
            f"<tr><td>{n}</td><td>{_e(leg['camera_id'])}</td><td>{_e(leg['first_seen'])}</td>"
            f"<td>{_e(leg['last_seen'])}</td><td>{_e(_text(leg['track_ids']))}</td>"
            f"<td>{_e(leg['best_score'])}</td><td>{_e(elsewhere)}</td></tr>"
        )
        if n <= len(hops):
            hop = hops[n - 1]
            rows.append(
                f"<tr><td></td><td colspan='6'>&rarr; {_e(hop['to_camera'])} after "
                f"{_e(hop['seconds'])} s</td></tr>"
            )
    return f"<table>{head}{''.join(rows)}</table>"


def render_report(manifest: dict[str, Any]) -> bytes:
    """The manifest as one HTML page (the files' hashes are those given in `manifest`)."""
    who = manifest["exported_by"]
    summary = {
        "kind": manifest["kind"],
        "subject": manifest["subject"],
        "exported by": f"{who['name']} ({who['role']})",
        "exported at": manifest["exported_at"],
        "surveil version": manifest["surveil_version"],
        "model ids": manifest["model_ids"],
        "missing (gone from storage)": manifest["missing"],
    }
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Evidence: {_e(manifest['kind'])} {_e(manifest['subject'].get('id'))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Evidence: {_e(manifest['kind'])} {_e(manifest['subject'].get('id'))}</h1>",
        _facts(summary),
    ]
    if manifest.get("query"):
        query = manifest["query"]
        parts += ["<h2>Query</h2>", _img(query.get("crop"), "crop"), _facts(query)]
    path = manifest["subject"].get("path")
    if path and path.get("legs"):
        title = f"Path across cameras ({len(path['legs'])} legs, {path['overlapping']} overlapping)"
        parts += [f"<h2>{_e(title)}</h2>", _path(path)]
    parts += [f"<h2>Items ({len(manifest['items'])})</h2>", _items(manifest)]
    parts.append(
        "<p>Every file's SHA-256 is in manifest.json and SHA256SUMS; check them with "
        "<code>surveil export verify ARCHIVE.zip</code>.</p></body></html>"
    )
    return "\n".join(parts).encode()
