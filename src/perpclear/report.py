"""Reports of cascade runs: ``report.json``, ``charges.csv`` and ``report.html``.

``write_report(results)`` writes ``reports/<UTC timestamp>-<scenario>/`` with:

- ``report.json``: every ``CascadeResult`` of the run (one, or one per policy
  for a comparison), plus the comparison table;
- ``charges.csv``: one row per account per settlement of socialized losses
  (``LossSettled`` for EQUITY, ``FundingSettled`` for OPEN_INTEREST); an EQUITY
  row covers every socialization between its ``scale_before`` and
  ``scale_after`` (the contract settles all pending ones in one step), and its
  ``to_insurance`` is the negative share an underwater account was not paid;
- ``report.html``: one self-contained file (inline SVG, no script, no network)
  with the price path and its liquidations, the vault over time, the
  cumulative residual, the charges per account as % of equity, and for a
  comparison the policies side by side.

Files are written under a temporary name and renamed, so a report directory
never holds a half-written file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from perpclear.cascade import CascadeResult

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]
W, H, PAD = 640, 240, 48


# ------------------------------------------------------------------ figures


def policy_figures(r: CascadeResult) -> dict:
    """The comparison figures of one run: who paid, how much, how evenly."""
    unit = 10**r.decimals
    charged = [a for a in r.accounts if a.charged > 0]
    # Fairness is read on the accounts never liquidated: their equity moved
    # only with the marks and the charges (a liquidated account's final
    # equity says nothing about the equity it was charged on).
    untouched = sorted(a.charged / (a.equity + a.charged) for a in charged if not a.liquidations and a.equity + a.charged > 0)
    t = r.totals()
    spread = (untouched[-1] - untouched[0]) if untouched else 0.0
    return {
        "policy": r.policy,
        "total_charged": t["charged"] / unit,
        "accounts_charged": t["accounts_charged"],
        "largest_charge": max((a.charged for a in charged), default=0) / unit,
        "median_charge_pct_equity": 100 * untouched[len(untouched) // 2] if untouched else 0.0,
        "max_charge_pct_equity": 100 * untouched[-1] if untouched else 0.0,
        "insurance_used": t["insurance_paid"] / unit,
        "bad_debt": t["bad_debt"] / unit,
        # Fairness: the spread of charge / (final equity + charge) among the
        # charged accounts never liquidated, in percentage points (0 = all lost
        # the same share; price moves after the charges widen it a little).
        "fairness_spread_pp": 100 * spread,
    }


def charges_rows(r: CascadeResult) -> list[dict]:
    index = {a.address: a.index for a in r.accounts}
    rows = []
    for s in r.settlements:
        amount = s["charge"] if s["event"] == "LossSettled" else s["amount"]
        rows.append(
            {
                "policy": r.policy,
                "block": s["block"],
                "event": s["event"],
                "account": s["account"],
                "trader_index": index.get(s["account"], ""),
                "charge": amount,
                "to_insurance": s.get("to_insurance", ""),
                "scale_before": s.get("scale_before", ""),
                "scale_after": s.get("scale_after", ""),
                "market": s.get("market", ""),
            }
        )
    for f in r.deleveraged:  # ADL: what closing at the bankruptcy price cost beyond the mark
        rows.append(
            {
                "policy": r.policy, "block": f["block"], "event": "Deleveraged", "account": f["counterparty"],
                "trader_index": index.get(f["counterparty"], ""), "charge": f["charge"],
                "to_insurance": "", "scale_before": "", "scale_after": "", "market": f["market"],
            }
        )
    return rows


# ------------------------------------------------------------------ SVG


def _scale(values: Sequence[float], lo_px: float, hi_px: float):
    lo, hi = min(values), max(values)
    if hi == lo:
        hi = lo + 1
    return lambda v: lo_px + (v - lo) * (hi_px - lo_px) / (hi - lo), lo, hi


def line_chart(title: str, series: list[tuple[str, list[float]]], y_label: str, markers: list[tuple[int, float]] = ()) -> str:
    """An SVG line chart over the block index; ``markers`` are (x, y) red dots."""
    xs = max((len(v) for _, v in series), default=1)
    all_y = [y for _, v in series for y in v] + [y for _, y in markers] or [0.0]
    sx, _, _ = _scale([0, max(xs - 1, 1)], PAD, W - 12)
    sy, lo, hi = _scale(all_y, H - 30, 24)
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">',
             f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff" stroke="#e5e7eb"/>',
             f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{PAD}" y1="{H - 30}" x2="{W - 12}" y2="{H - 30}" stroke="#9ca3af"/>',
             f'<line x1="{PAD}" y1="24" x2="{PAD}" y2="{H - 30}" stroke="#9ca3af"/>',
             f'<text x="4" y="28" font-size="10">{hi:,.6g}</text>',
             f'<text x="4" y="{H - 32}" font-size="10">{lo:,.6g}</text>',
             f'<text x="{W // 2}" y="{H - 8}" font-size="10" text-anchor="middle">{html.escape(y_label)}</text>']
    for i, (name, values) in enumerate(series):
        if not values:
            continue
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{W - 150}" y="{32 + 14 * i}" font-size="11" fill="{color}">{html.escape(name)}</text>')
    for x, y in markers:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#dc2626" fill-opacity="0.6"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, series: list[tuple[str, list[float]]], y_label: str) -> str:
    """Sorted values as bars (one group of bars per series, side by side)."""
    n = max((len(v) for _, v in series), default=0) or 1
    all_y = [y for _, v in series for y in v] + [0.0]
    sy, lo, hi = _scale(all_y, H - 30, 24)
    width = (W - PAD - 12) / n / max(len(series), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">',
             f'<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff" stroke="#e5e7eb"/>',
             f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{PAD}" y1="{H - 30}" x2="{W - 12}" y2="{H - 30}" stroke="#9ca3af"/>',
             f'<text x="4" y="28" font-size="10">{hi:,.4g}</text>',
             f'<text x="{W // 2}" y="{H - 8}" font-size="10" text-anchor="middle">{html.escape(y_label)}</text>']
    for k, (name, values) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        for i, v in enumerate(values):
            x = PAD + (i * len(series) + k) * width
            y = sy(v)
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0.5):.2f}" height="{H - 30 - y:.1f}" fill="{color}"/>')
        parts.append(f'<text x="{W - 150}" y="{32 + 14 * k}" font-size="11" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def run_charts(r: CascadeResult) -> list[str]:
    unit = 10**r.decimals
    charts = []
    names = [f"market {m}" for m in range(len(r.blocks[0]["marks"]))] if r.blocks else []
    for m, name in enumerate(names):
        marks = [b["marks"][m] / unit for b in r.blocks]
        dots = [(l["block"], l["price"] / unit) for l in r.liquidations if l["market"] == m]
        charts.append(line_chart(f"{name}: mark per block, liquidations in red", [(name, marks)], "block", dots))
    charts.append(line_chart("insurance vault assets", [("vault", [b["vault_assets"] / unit for b in r.blocks])], "block"))
    per_block = [0.0] * len(r.blocks)
    for b in r.bankruptcies:
        if b["block"] < len(per_block):
            per_block[b["block"]] += b["residual"] / unit
    cumulative, total = [], 0.0
    for v in per_block:
        total += v
        cumulative.append(total)
    charts.append(line_chart("cumulative residual handed to the loss policy", [("residual", cumulative)], "block"))
    charts.append(bar_chart(f"charges per account, % of equity ({r.policy})", [(r.policy, _charge_pcts(r))], "accounts charged, sorted"))
    return charts


def _charge_pcts(r: CascadeResult) -> list[float]:
    return sorted(100 * a.charged / (a.equity + a.charged) for a in r.accounts if a.charged > 0 and a.equity + a.charged > 0)


# ------------------------------------------------------------------ HTML


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(f'{v:,.2f}' if isinstance(v, float) else str(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(results: list[CascadeResult]) -> str:
    first = results[0]
    title = f"perpclear — {first.scenario}" + (" — policy comparison" if len(results) > 1 else "")
    sections = []
    if len(results) > 1:
        sections.append("<h2>Policies side by side</h2>" + _table([policy_figures(r) for r in results]))
        sections.append(
            bar_chart("charges per account, % of equity, per policy", [(r.policy, _charge_pcts(r)) for r in results], "accounts charged, sorted")
        )
    for r in results:
        t = r.totals()
        unit = 10**r.decimals
        summary = [{
            "backend": r.backend, "seed": r.seed, "accounts": len(r.accounts), "liquidations": t["liquidations"],
            "bankruptcies": t["bankruptcies"], "insurance paid": t["insurance_paid"] / unit,
            "residual": t["residual"] / unit, "socialized": t["socialized"] / unit, "bad debt": t["bad_debt"] / unit,
            "charged": t["charged"] / unit,
        }]
        inv = [{"invariant": k, "result": v} for k, v in r.invariants.items()]
        sections.append(f"<h2>Policy {html.escape(r.policy)}</h2>" + _table(summary) + _table(inv) + "".join(run_charts(r)))
    style = (
        "body{font-family:sans-serif;margin:24px;color:#111827}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #d1d5db;padding:3px 8px;font-size:12px;text-align:right}"
        "svg.chart{display:block;margin:12px 0}"
    )
    return (
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(first.scenario)} (seed {first.seed}), {len(first.accounts)} accounts, "
        f"{len(first.blocks)} blocks. Generated by perpclear.</p>{''.join(sections)}</body></html>"
    )


# ------------------------------------------------------------------ files


def write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_report(results: list[CascadeResult], root: Path | str = "reports") -> Path:
    """Writes the three report files of one run; returns the directory."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = Path(root) / f"{stamp}-{results[0].scenario}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    out.mkdir(parents=True)
    doc = {"runs": [asdict(r) for r in results]}
    if len(results) > 1:
        doc["comparison"] = [policy_figures(r) for r in results]
    write_atomic(out / "report.json", json.dumps(doc, indent=1))
    buf = io.StringIO()
    rows = [row for r in results for row in charges_rows(r)]
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["policy", "block", "event", "account", "charge"])
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "charges.csv", buf.getvalue())
    write_atomic(out / "report.html", render_html(results))
    return out
