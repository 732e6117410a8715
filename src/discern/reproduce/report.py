"""The HTML report: per paper the claim, the paper's number, ours, whether it held, and plots."""

from __future__ import annotations

import html
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from discern.core import atomic_write_text


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return html.escape(str(v))


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = [c for c in rows[0] if not c.endswith("_seeds")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(c: dict) -> str:
    """A claim's verdict (held / not held / inconclusive / self-test); older results carry only ``held``."""
    v = c.get("verdict") or ("held" if c.get("held") else "not held")
    return f"{v} ({c['test']})" if c.get("test") else v


def _verdict_class(c: dict) -> str:
    v = c.get("verdict") or ("held" if c.get("held") else "not held")
    return {"held": "held", "not held": "failed"}.get(v, "open")


def write_report(results: list[dict], out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` (plots copied beside it) and ``out_dir/results.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = out_dir / "results.json"
    merged = {r["paper"]: r for r in (json.loads(existing.read_text()) if existing.is_file() else [])}
    for r in results:
        merged[r["paper"]] = r
    sections = []
    for paper, r in merged.items():
        claims = "".join(
            f"<tr><td>{html.escape(c['claim'])}</td><td>{html.escape(c['paper'])}</td>"
            f"<td>{html.escape(c['ours'])}</td><td class={_verdict_class(c)}>"
            f"{html.escape(_verdict(c))}</td></tr>" for c in r["claims"])
        imgs = ""
        for p in r.get("plots", []):
            src = Path(r["run"]) / p
            dst = out_dir / paper / Path(p).name
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            imgs += f'<img src="{html.escape(paper + "/" + Path(p).name)}" alt="{html.escape(p)}">'
        sections.append(
            f"<section><h2>{html.escape(r.get('title', paper))}</h2>"
            f"<p class=run>run folder: {html.escape(r['run'])}</p>"
            f"<table><tr><th>claim</th><th>paper</th><th>ours</th><th>result</th></tr>{claims}</table>"
            f"{_table(r.get('table', []))}{imgs}</section>")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>discern reproductions</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
.held{{background:#d8f5d0}}.failed{{background:#f8d7d0}}.open{{background:#f5f0c8}}img{{max-width:100%}}.run{{color:#666;font-size:90%}}</style>
</head><body><h1>discern: reproductions</h1><p>written {stamp}</p>{''.join(sections)}</body></html>
"""
    atomic_write_text(out_dir / "index.html", page)
    atomic_write_text(existing, json.dumps(list(merged.values()), indent=2, default=float))
    return out_dir / "index.html"
