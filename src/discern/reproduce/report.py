"""The report a user reads: ``index.html`` and ``results.json`` in the report folder.

At the top, the count of each verdict over all claims and a link to each paper; per paper, the
preset, date, duration, package versions and hardware of its run, then each claim with the
paper's number, ours, the named test, its p-value / interval and the verdict, then the summary
table and the plots.  A failed experiment shows its error in its own section, and one skipped
(``discern reproduce --skip-missing`` when its data is not installed) the reason.
"""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from discern.core import atomic_write_text
from discern.core.results import VERDICTS

_CLASS = {"held": "held", "not held": "failed", "inconclusive": "open", "self-test": "self"}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return html.escape(str(v))


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = [c for c in rows[0] if not c.endswith("_seeds")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(c: dict) -> str:
    """A claim's verdict; results written before verdicts existed carry only ``held``."""
    return c.get("verdict") or ("held" if c.get("held") else "not held")


def _evidence(c: dict) -> str:
    parts = []
    ci = c.get("ci")
    if ci:
        parts.append(f"{int(round(100 * c.get('level', 0.95)))}% CI [{ci[0]:.4g}, {ci[1]:.4g}]")
    if c.get("p_value") is not None:
        parts.append(f"p = {c['p_value']:.3g}")
    return "; ".join(parts) or "–"


def _claims(r: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c.get('statement') or c.get('claim', ''))}</td><td>{html.escape(str(c.get('paper', '')))}"
        f"</td><td>{html.escape(str(c.get('ours', '')))}</td><td>{html.escape(str(c.get('test', '')))}</td>"
        f"<td>{html.escape(_evidence(c))}</td><td class=\"{_CLASS.get(_verdict(c), 'open')}\">"
        f"{html.escape(_verdict(c))}</td></tr>" for c in r.get("claims", []))
    if not rows:
        return ""
    return ("<table><tr><th>claim</th><th>paper</th><th>ours</th><th>test</th><th>evidence</th><th>verdict</th></tr>"
            f"{rows}</table>")


def _meta(r: dict) -> str:
    m = r.get("meta") or {}
    if r.get("status") == "skipped":
        return f"<p class=run>preset <b>{html.escape(str(m.get('preset', '?')))}</b> · not run</p>"
    if not m:
        return f"<p class=run>run folder: {html.escape(str(r.get('run', '')))}</p>"
    v = m.get("versions", {})
    hw = m.get("hardware", {})
    dur = m.get("duration_s")
    dur_s = f"{int(dur) // 60} min {int(dur) % 60} s" if isinstance(dur, (int, float)) else "?"
    vers = ", ".join(f"{k} {x}" for k, x in v.items())
    hws = f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores" + (f", {hw['gpu']}" if hw.get("gpu") else "")
    return (f"<p class=run>preset <b>{html.escape(str(m.get('preset', '?')))}</b> · started "
            f"{html.escape(str(m.get('started', '?')))} · {dur_s} · {html.escape(hws)}<br>{html.escape(vers)}<br>"
            f"run folder: {html.escape(str(r.get('run', '')))}</p>")


def _order(merged: dict) -> list[dict]:
    try:
        from .registry import papers

        rank = {p.name: p.number for p in papers()}
    except Exception:  # the report must still be written
        rank = {}
    return sorted(merged.values(), key=lambda r: (rank.get(r.get("paper"), 99), str(r.get("paper"))))


def summary(results: list[dict]) -> dict:
    """Counts of each verdict over every claim, and the experiments that failed or were skipped."""
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        for c in r.get("claims", []):
            v = _verdict(c)
            counts[v] = counts.get(v, 0) + 1
    return {"verdicts": counts, "papers": len(results),
            "failed": [r["paper"] for r in results if r.get("status") == "failed"],
            "skipped": [r["paper"] for r in results if r.get("status") == "skipped"]}


def write_report(results: list[dict], out_dir: Path) -> Path:
    """Merge ``results`` (one dict per paper) into ``out_dir/results.json`` and rewrite
    ``out_dir/index.html`` (plots copied beside it).  Both files are written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = out_dir / "results.json"
    try:
        old = json.loads(existing.read_text()) if existing.is_file() else []
    except ValueError:
        old = []
    merged = {r["paper"]: r for r in old if isinstance(r, dict) and "paper" in r}
    for r in results:
        merged[r["paper"]] = r
    rows = _order(merged)
    sections, links = [], []
    for r in rows:
        paper = str(r["paper"])
        anchor = html.escape(paper)
        status = r.get("status", "ok")
        links.append(f'<li><a href="#{anchor}">{html.escape(r.get("title", paper))}</a>'
                     + (" — <span class=failed>failed</span>" if status == "failed" else "")
                     + (" — <span class=skipped>skipped</span>" if status == "skipped" else "") + "</li>")
        imgs = ""
        for p in r.get("plots", []):
            src = Path(r.get("run", "")) / p
            dst = out_dir / paper / Path(p).name
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            imgs += f'<img src="{html.escape(paper + "/" + Path(p).name)}" alt="{html.escape(p)}">'
        err = ""
        if status == "failed":
            err = f"<p class=failed>this experiment failed: {html.escape(str(r.get('error', '')))}</p>"
            if r.get("traceback"):
                err += f"<details><summary>traceback</summary><pre>{html.escape(r['traceback'])}</pre></details>"
        elif status == "skipped":
            err = f"<p class=skipped>this experiment was skipped: {html.escape(str(r.get('error', '')))}</p>"
        sections.append(f'<section id="{anchor}"><h2>{html.escape(r.get("title", paper))}</h2>{_meta(r)}{err}'
                        f"{_claims(r)}{_table(r.get('table', []))}{imgs}</section>")
    s = summary(rows)
    counts = " · ".join(f'<span class="{_CLASS[v]}">{v}: {k}</span>' for v, k in s["verdicts"].items())
    failed = f" · <span class=failed>{len(s['failed'])} experiment(s) failed</span>" if s["failed"] else ""
    if s["skipped"]:
        failed += f" · <span class=skipped>{len(s['skipped'])} experiment(s) skipped</span>"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>discern reproductions</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
.held{{background:#d8f5d0}}.failed{{background:#f8d7d0}}.skipped{{background:#e8e8e8}}.open{{background:#f5f0c8}}.self{{background:#dde6f5}}
img{{max-width:100%}}.run{{color:#666;font-size:90%}}</style>
</head><body><h1>discern: reproductions</h1><p>written {stamp} · {s['papers']} papers · claims: {counts}{failed}</p>
<ul>{''.join(links)}</ul>{''.join(sections)}</body></html>
"""
    atomic_write_text(existing, json.dumps(rows, indent=2, default=float))
    atomic_write_text(out_dir / "index.html", page)
    return out_dir / "index.html"
