"""Reports of cascade runs: ``report.json``, ``charges.csv`` and ``report.html``.

``write_report(results)`` writes ``reports/<UTC timestamp>-<scenario>/`` with:

- ``report.json``: every ``CascadeResult`` of the run (one, or one per policy
  for a comparison), plus the comparison table;
- ``charges.csv``: one row per account per settlement of socialized losses
  (``LossSettled`` for EQUITY, ``FundingSettled`` for OPEN_INTEREST); an EQUITY
  row covers every socialization between its ``scale_before`` and
  ``scale_after`` (the contract settles all pending ones in one step), and its
  ``to_insurance`` is the negative share an underwater account was not paid;
- ``report.html``: one self-contained file (plotly.js inlined, nothing
  fetched, about 5 MB) with plotly charts (``perpclear.charts``): per market
  the mark with its liquidations, open interest, the vault with its inflows
  and outflows, each bankruptcy's waterfall, the socialization rate per
  event, each share as % of the account's equity at the time, ADL prices
  against the mark, a sortable table of accounts, and for a comparison the
  policies on the same axes.

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

from plotly import io as pio
from plotly.offline import get_plotlyjs

from perpclear import charts
from perpclear.cascade import FAIRNESS_MAX_TRADERS
from perpclear.results import CascadeResult



# ------------------------------------------------------------------ figures


def policy_figures(r: CascadeResult) -> dict:
    """The comparison figures of one run: who paid, how much, how evenly.

    Percentages of equity are taken at the moment of each socialization
    (``CascadeResult.fairness``, read on chain just before and after each
    bankruptcy): ``median/max_charge_pct_equity`` over the paying accounts of
    what each lost to socializations (``charts.lost_pcts``), and
    ``fairness_spread_pp`` the largest spread (max - min) of the shares' %
    within one socialization: 0 under EQUITY up to rounding. None when the
    run was too large to record shares per account, or nobody paid.
    """
    unit = 10**r.decimals
    t = r.totals()
    charged = [a for a in r.accounts if a.charged > 0]
    lost, spread = sorted(charts.lost_pcts(r).values()), None
    if r.fairness:
        spread = 0.0
        for ev in r.fairness:
            values = list(charts.event_pcts(r, ev).values())
            if values:
                spread = max(spread, max(values) - min(values))
    return {
        "policy": r.policy,
        "total_charged": t["charged"] / unit,
        "accounts_charged": t["accounts_charged"],
        "largest_charge": max((a.charged for a in charged), default=0) / unit,
        "median_charge_pct_equity": lost[len(lost) // 2] if lost else None,
        "max_charge_pct_equity": lost[-1] if lost else None,
        "insurance_used": t["insurance_paid"] / unit,
        "bad_debt": t["bad_debt"] / unit,
        "fairness_spread_pp": spread,
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
    for f in r.clawbacks:  # PROFIT: what each payer gave of its profit
        rows.append(
            {
                "policy": r.policy, "block": f["block"], "event": "ProfitCharged", "account": f["payer"],
                "trader_index": index.get(f["payer"], ""), "charge": f["amount"],
                "to_insurance": "", "scale_before": "", "scale_after": "", "market": f["market"],
            }
        )
    return rows


# ------------------------------------------------------------------ HTML

# Reports JavaScript errors into the page (the browser test reads them back)
# and sorts a table by the clicked column.
SCRIPT = """
window.addEventListener("error", function (e) {
  var el = document.getElementById("errors");
  el.textContent += (e.message || "error") + "\\n";
  el.hidden = false;
});
function sortTable(th) {
  var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  var asc = th.dataset.order !== "asc";
  Array.prototype.forEach.call(th.parentNode.children, function (h) { delete h.dataset.order; });
  th.dataset.order = asc ? "asc" : "desc";
  var value = function (row) {
    var text = row.cells[col].dataset.v || row.cells[col].textContent;
    var n = parseFloat(text.replace(/,/g, ""));
    return isNaN(n) ? text : n;
  };
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = value(a), y = value(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  rows.forEach(function (row) { body.appendChild(row); });
}
"""

STYLE = (
    "body{font-family:sans-serif;margin:24px;color:#111827;max-width:1200px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d1d5db;padding:3px 8px;font-size:12px;text-align:right}"
    "th{background:#f3f4f6}table.sortable th{cursor:pointer}table.sortable th[data-order=asc]::after{content:' \\25B2'}"
    "table.sortable th[data-order=desc]::after{content:' \\25BC'}div.scroll{max-height:480px;overflow:auto}"
    "#errors{color:#b91c1c;white-space:pre}"
)


def _cell(v) -> str:
    if v is None:
        return "<td>n/a</td>"
    if isinstance(v, float):
        return f'<td data-v="{v!r}">{v:,.6g}</td>' if abs(v) < 1e-3 and v else f'<td data-v="{v!r}">{v:,.2f}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def table(rows: list[dict], sortable: bool = False) -> str:
    if not rows:
        return "<p>(none)</p>"
    attr = ' class="sortable"' if sortable else ""
    click = ' onclick="sortTable(this)"' if sortable else ""
    head = "".join(f"<th{click}>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(_cell(v) for v in row.values()) + "</tr>" for row in rows)
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def account_rows(r: CascadeResult) -> list[dict]:
    """One row per account: what it put in, has now, paid, and what part of its equity that was."""
    unit = 10**r.decimals
    lost = charts.lost_pcts(r)
    index = {a.address: a.index for a in r.accounts}
    return [
        {
            "account": charts.short(a.address, index),
            "deposit": a.deposit / unit,
            "equity now": a.equity / unit,
            "charged": a.charged / unit,
            "lost to socializations, % of equity then": lost.get(a.address),
            "liquidations": a.liquidations,
            "bankrupt": "yes" if a.bankrupt else "",
        }
        for a in sorted(r.accounts, key=lambda a: (-a.charged, a.index))
    ]


def figure(fig) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False,
                       config={"displaylogo": False, "responsive": True})


def run_figures(r: CascadeResult) -> list:
    figs = [charts.marks(r, m) for m in range(len(charts.market_names(r)))]
    figs += [charts.open_interest(r), charts.vault(r)]
    if r.bankruptcies:
        figs.append(charts.waterfall(r))
    if r.socializations or r.adl_runs or r.clawback_runs:
        figs.append(charts.rates(r))
    if r.fairness:
        figs.append(charts.fairness(r))
    if r.adl_runs:
        figs.append(charts.adl(r))
    return figs


def render_html(results: list[CascadeResult]) -> str:
    first = results[0]
    title = f"perpclear — {first.scenario}" + (" — policy comparison" if len(results) > 1 else "")
    sections = []
    if len(results) > 1:
        sections.append("<h2>Policies side by side</h2>" + table([policy_figures(r) for r in results])
                        + figure(charts.compare(results)))
    for r in results:
        t = r.totals()
        unit = 10**r.decimals
        summary = [{
            "backend": r.backend, "seed": r.seed, "accounts": len(r.accounts), "liquidations": t["liquidations"],
            "bankruptcies": t["bankruptcies"], "insurance paid": t["insurance_paid"] / unit,
            "residual": t["residual"] / unit, "socialized": t["socialized"] / unit, "bad debt": t["bad_debt"] / unit,
            "charged": t["charged"] / unit, "withheld to insurance": t["withheld_to_insurance"] / unit,
        }]
        inv = [{"invariant": k, "result": v} for k, v in r.invariants.items()]
        fairness = "" if r.fairness else (
            "<p>Shares at the time of each socialization are recorded for runs of up to "
            f"{FAIRNESS_MAX_TRADERS:,} traders; this one has more.</p>")
        sections.append(
            f"<h2>Policy {html.escape(r.policy)}</h2>" + table(summary) + table(inv) + fairness
            + "".join(figure(f) for f in run_figures(r))
            + "<h3>Accounts (click a column to sort)</h3><div class=\"scroll\">" + table(account_rows(r), sortable=True) + "</div>"
        )
    intro = (f"<p>{html.escape(first.scenario)} (seed {first.seed}), {len(first.accounts)} accounts, "
             f"{len(first.blocks)} blocks, {', '.join(charts.market_names(first))}. Amounts in whole tokens; "
             f"hover a chart for each point's details.</p>")
    return page(title, intro + "".join(sections))


def page(title: str, body: str) -> str:
    """A whole report page: plotly.js inlined once, so it opens offline and fetches nothing."""
    return (
        f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style><script>{SCRIPT}</script><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(title)}</h1><p id=\"errors\" hidden></p>{body}"
        f"<p>One self-contained file: plotly.js is inlined, nothing is fetched. Generated by perpclear.</p></body></html>"
    )


# ------------------------------------------------------------------ files


def write_atomic(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_report(results: list[CascadeResult], root: Path | str = "reports", folder: Path | None = None) -> Path:
    """Writes the three report files of one run into ``folder``, by default a new
    ``<root>/<UTC timestamp>-<scenario>/``; returns the directory."""
    if folder is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = Path(root) / f"{stamp}-{results[0].scenario}"
        folder, n = base, 1
        while folder.exists():
            n += 1
            folder = base.with_name(f"{base.name}-{n}")
    out = folder
    out.mkdir(parents=True, exist_ok=True)
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
