"""Charts of cascade runs for ``report.html``: plotly figures, one function each.

Every figure takes a ``CascadeResult`` (or several, for the comparison), has
axes with ticks and units and names its markets; hover shows the details of
each point (account, amounts in whole tokens). ``report.render_html`` inlines
plotly.js once, so the page opens offline.
"""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go

from perpclear.units import EQUITY_SCALE, POLICY_EQUITY, WAD
from perpclear.results import CascadeResult

COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]
LONG, SHORT = "#dc2626", "#16a34a"


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 340) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        height=height,
        margin={"l": 70, "r": 20, "t": 50, "b": 90},
        template="plotly_white",
        hovermode="closest",
        # legends under the plot area: they never cover data
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
    )
    fig.update_xaxes(title_text=x, showgrid=True, ticks="outside", zeroline=False)
    fig.update_yaxes(title_text=y, showgrid=True, ticks="outside", tickformat=",.6~g")
    return fig


def market_names(r: CascadeResult) -> list[str]:
    n = len(r.blocks[0]["marks"]) if r.blocks else 0
    return list(r.market_names) or [f"market {m}" for m in range(n)]


def short(address: str, index: dict[str, int]) -> str:
    """An account as the report names it: its trader index, else its address."""
    i = index.get(address)
    if i is None:
        return address[:10]
    return {-1: "market maker", -2: "liquidator", -3: "vault"}.get(i, f"trader {i}")


def lost_pcts(r: CascadeResult) -> dict[str, float]:
    """Per paying account, the part of its equity it lost to socializations, in %:
    1 - prod(1 - s/e) over the socializations it paid, each share s against its
    equity e at that moment. Under EQUITY it is 1 - prod(1 - r) for every account
    solvent throughout. Accounts under one token of equity at an event are left
    out of that event (one unit of rounding would dominate them)."""
    kept: dict[str, float] = {}
    for ev in r.fairness:
        for a, pct in event_pcts(r, ev).items():
            kept[a] = kept.get(a, 1.0) * (1 - pct / 100)
    return {a: 100 * (1 - k) for a, k in kept.items()}


def event_pcts(r: CascadeResult, ev: dict) -> dict[str, float]:
    """One socialization of ``r.fairness``: each paying account's share, % of its
    equity then (accounts under one token of equity left out: one unit of
    rounding would dominate them)."""
    unit = 10**r.decimals
    return {a: 100 * s / e for a, e, s in ev["accounts"] if e >= unit and s > 0}


def marks(r: CascadeResult, m: int) -> go.Figure:
    """Market ``m``: the mark per block, liquidations as markers sized by notional, longs and shorts apart."""
    unit, name = 10**r.decimals, market_names(r)[m]
    index = {a.address: a.index for a in r.accounts}
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[b["block"] for b in r.blocks], y=[b["marks"][m] / unit for b in r.blocks], mode="lines",
        name="mark", line={"color": COLORS[0], "width": 2}, hovertemplate="block %{x}<br>mark %{y:,.4f}<extra></extra>"))
    for side, color, symbol in (("long", LONG, "triangle-down"), ("short", SHORT, "triangle-up")):
        # The liquidator takes over size > 0: the liquidated account was long.
        rows = [l for l in r.liquidations if l["market"] == m and (l["size"] > 0) == (side == "long")]
        if not rows:
            continue
        notional = [abs(l["size"]) * l["price"] / WAD / unit for l in rows]
        top = max(notional)
        fig.add_trace(go.Scatter(
            x=[l["block"] for l in rows], y=[l["price"] / unit for l in rows], mode="markers",
            name=f"liquidated {side}s", marker={"color": color, "symbol": symbol, "opacity": 0.7,
                                               "size": [6 + 18 * math.sqrt(v / top) for v in notional]},
            customdata=[[short(l["account"], index), abs(l["size"]) / WAD, v, l["penalty"] / unit]
                        for l, v in zip(rows, notional)],
            hovertemplate=("%{customdata[0]}<br>block %{x}, price %{y:,.4f}<br>size %{customdata[1]:,.4f}"
                           "<br>notional %{customdata[2]:,.2f}<br>penalty %{customdata[3]:,.4f}<extra></extra>")))
    return _layout(fig, f"{name}: mark and liquidations ({r.policy})", "block", "price (tokens per contract)")


def open_interest(r: CascadeResult) -> go.Figure:
    """Open interest per market and block, in contracts (one side; the other is equal)."""
    fig = go.Figure()
    for m, name in enumerate(market_names(r)):
        fig.add_trace(go.Scatter(
            x=[b["block"] for b in r.blocks], y=[b.get("open_interest", [0] * (m + 1))[m] / WAD for b in r.blocks],
            mode="lines", name=name, line={"color": COLORS[m % len(COLORS)]},
            hovertemplate=f"{name}<br>block %{{x}}<br>open interest %{{y:,.4f}}<extra></extra>"))
    return _layout(fig, f"open interest ({r.policy})", "block", "contracts per side")


def vault(r: CascadeResult) -> go.Figure:
    """The insurance vault's assets per block, with what flowed in and out at each block."""
    unit = 10**r.decimals
    blocks = [b["block"] for b in r.blocks]
    inflow = {b: 0.0 for b in blocks}
    outflow = {b: 0.0 for b in blocks}
    for l in r.liquidations:
        inflow[l["block"]] = inflow.get(l["block"], 0.0) + l["insurance_reward"] / unit
    for b in r.bankruptcies:
        outflow[b["block"]] = outflow.get(b["block"], 0.0) - b["insurance_paid"] / unit
    fig = go.Figure()
    fig.add_trace(go.Bar(x=list(inflow), y=list(inflow.values()), name="in: liquidation penalties",
                         marker_color=SHORT, hovertemplate="block %{x}<br>in %{y:,.4f}<extra></extra>"))
    fig.add_trace(go.Bar(x=list(outflow), y=list(outflow.values()), name="out: bankruptcies covered",
                         marker_color=LONG, hovertemplate="block %{x}<br>out %{y:,.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=blocks, y=[b["vault_assets"] / unit for b in r.blocks], mode="lines",
                             name="assets", line={"color": COLORS[0], "width": 2},
                             hovertemplate="block %{x}<br>assets %{y:,.2f}<extra></extra>"))
    fig.update_layout(barmode="relative")
    return _layout(fig, f"insurance vault ({r.policy})", "block", "tokens")


def waterfall(r: CascadeResult) -> go.Figure:
    """Each bankruptcy's deficit split into what the vault paid, what the policy
    placed on other accounts and what stayed bad debt (stacked, one bar per bankruptcy)."""
    unit = 10**r.decimals
    index = {a.address: a.index for a in r.accounts}
    placed = _placed(r)
    names = [f"#{i + 1} {short(b['account'], index)}" for i, b in enumerate(r.bankruptcies)]
    paid = [b["insurance_paid"] / unit for b in r.bankruptcies]
    booked = [placed[i] / unit for i in range(len(r.bankruptcies))]
    bad = [(b["residual"] - placed[i]) / unit for i, b in enumerate(r.bankruptcies)]
    fig = go.Figure()
    for label, values, color in (("insurance vault", paid, COLORS[0]), ("placed by the policy", booked, COLORS[4]),
                                 ("bad debt", bad, LONG)):
        fig.add_trace(go.Bar(
            x=names, y=values, name=label, marker_color=color,
            customdata=[[b["block"], b["deficit"] / unit] for b in r.bankruptcies],
            hovertemplate=f"%{{x}} (block %{{customdata[0]}})<br>deficit %{{customdata[1]:,.4f}}<br>{label} %{{y:,.4f}}<extra></extra>"))
    fig.update_layout(barmode="stack")
    return _layout(fig, f"each bankruptcy: deficit → insurance → residual → placed / bad debt ({r.policy})",
                   "bankruptcy, in order", "tokens")


def _placed(r: CascadeResult) -> list[int]:
    """What the policy placed of each bankruptcy's residual (its position in ``r.bankruptcies``)."""
    placed = [0] * len(r.bankruptcies)
    pending = {}  # (account, block) -> indexes of bankruptcies not yet matched
    for i, b in enumerate(r.bankruptcies):
        pending.setdefault((b["account"], b["block"]), []).append(i)
    for s in r.socializations:
        hits = pending.get((s["account"], s["block"]))
        if hits:
            placed[hits.pop(0)] += s["booked"]
    for run in r.adl_runs:
        if run["remaining"] == 0:
            hits = pending.get((run["account"], run["block"]))
            if hits:
                placed[hits.pop(0)] += run["residual"]
    return placed


def rates(r: CascadeResult) -> go.Figure:
    """The socialization rate of each event: EQUITY's r in % of equity; OPEN_INTEREST's
    charge per contract in % of the mark; ADL's bankruptcy-price gap in % of the mark;
    PROFIT's charge in % of the payers' profit."""
    unit = 10**r.decimals
    index = {a.address: a.index for a in r.accounts}
    mark = {b["block"]: b["marks"] for b in r.blocks}
    x, y, data = [], [], []
    for i, s in enumerate(r.socializations):
        if s["loss_policy"] == POLICY_EQUITY:
            pct = 100 * s["rate"] / EQUITY_SCALE
        else:
            price = mark.get(s["block"], [1] * (s["market"] + 1))[s["market"]]
            pct = 100 * s["rate"] / WAD / price
        x.append(i + 1)
        y.append(pct)
        data.append([short(s["account"], index), s["block"], s["residual"] / unit, s["booked"] / unit])
    for run in r.adl_runs:
        x.append(len(x) + 1)
        y.append(100 * abs(run["price"] - run["mark"]) / run["mark"] if run["mark"] else 0.0)
        data.append([short(run["account"], index), run["block"], run["residual"] / unit, run["residual"] / unit])
    for run in r.clawback_runs:
        x.append(len(x) + 1)
        y.append(100 * run["charged"] / run["profit"] if run["profit"] else 0.0)
        data.append([short(run["account"], index), run["block"], run["residual"] / unit, run["charged"] / unit])
    fig = go.Figure(go.Bar(
        x=x, y=y, marker_color=COLORS[3], name="rate", customdata=data,
        hovertemplate=("event %{x}: %{customdata[0]} (block %{customdata[1]})<br>rate %{y:,.6f} %"
                       "<br>residual %{customdata[2]:,.4f}<br>placed %{customdata[3]:,.4f}<extra></extra>")))
    what = {"EQUITY": "% of every account's equity", "OPEN_INTEREST": "charge per contract, % of the mark",
            "ADL": "bankruptcy price gap, % of the mark", "PROFIT": "% of the payers' profit"}.get(r.policy, "%")
    return _layout(fig, f"socialization rate per event ({r.policy})", "event, in order", what)


def _quantiles(values: list[float]) -> dict:
    """The five numbers of a box (min, quartiles, max), computed here: the page
    carries five numbers per box, not every account's."""
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]
    return {"lowerfence": [v[0]], "q1": [at(0.25)], "median": [at(0.5)], "q3": [at(0.75)], "upperfence": [v[-1]]}


def fairness(r: CascadeResult) -> go.Figure:
    """Per socialization, the spread of the paying accounts' shares as % of their
    equity at that moment: the median, with the range from the least to the most hit."""
    index = {a.address: a.index for a in r.accounts}
    bankrupt = {(b["block"], b["account"]) for b in r.bankruptcies}
    x, median, low, high, data = [], [], [], [], []
    for i, ev in enumerate(r.fairness):
        values = sorted(event_pcts(r, ev).values())
        if not values:
            continue
        mid = values[len(values) // 2]
        x.append(i + 1)
        median.append(mid)
        low.append(mid - values[0])
        high.append(values[-1] - mid)
        who = next((short(a, index) for (blk, a) in bankrupt if blk == ev["block"]), "")
        data.append([ev["block"], len(values), values[0], values[-1], values[-1] - values[0], who])
    fig = go.Figure(go.Scatter(
        x=x, y=median, mode="markers", name="median share", marker={"color": COLORS[3], "size": 7},
        error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low, "color": COLORS[3], "width": 3},
        customdata=data,
        hovertemplate=("event %{x} (block %{customdata[0]}), %{customdata[1]} accounts paid<br>median %{y:,.6f} %"
                       "<br>least %{customdata[2]:,.6f} %, most %{customdata[3]:,.6f} %"
                       "<br>spread %{customdata[4]:,.6f} pp<extra></extra>")))
    return _layout(fig, f"fairness: each share as % of the account's equity at the socialization ({r.policy})",
                   "socialization, in order", "% of equity")


def adl(r: CascadeResult) -> go.Figure:
    """ADL: each run's bankruptcy price against the mark, and every counterparty's fill."""
    unit = 10**r.decimals
    index = {a.address: a.index for a in r.accounts}
    fig = go.Figure()
    runs = list(range(1, len(r.adl_runs) + 1))
    fig.add_trace(go.Scatter(x=runs, y=[run["mark"] / unit for run in r.adl_runs], mode="markers", name="mark",
                             marker={"color": COLORS[0], "symbol": "line-ew-open", "size": 18},
                             hovertemplate="run %{x}<br>mark %{y:,.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=runs, y=[run["price"] / unit for run in r.adl_runs], mode="markers",
                             name="bankruptcy price", marker={"color": LONG, "symbol": "diamond", "size": 9},
                             customdata=[[short(run["account"], index), run["residual"] / unit] for run in r.adl_runs],
                             hovertemplate="run %{x}: %{customdata[0]}<br>price %{y:,.4f}<br>residual %{customdata[1]:,.4f}<extra></extra>"))
    run_of = {}
    for i, run in enumerate(r.adl_runs):
        run_of.setdefault((run["account"], run["block"]), i + 1)
    fills = r.deleveraged
    fig.add_trace(go.Scatter(
        x=[run_of.get((f["account"], f["block"]), 0) for f in fills], y=[f["price"] / unit for f in fills],
        mode="markers", name="counterparties", marker={"color": COLORS[2], "size": 6, "opacity": 0.6},
        customdata=[[short(f["counterparty"], index), f["size"] / WAD, f["charge"] / unit, f["rank"]] for f in fills],
        hovertemplate=("%{customdata[0]} (rank %{customdata[3]})<br>size %{customdata[1]:,.4f} at %{y:,.4f}"
                       "<br>paid beyond the mark %{customdata[2]:,.4f}<extra></extra>")))
    return _layout(fig, "ADL: bankruptcy price against the mark, and the counterparties", "ADL run, in order",
                   "price (tokens per contract)")


def compare(results: Sequence[CascadeResult]) -> go.Figure:
    """The policies on the same axes: what each paying account lost, % of its equity at the time."""
    fig = go.Figure()
    for k, r in enumerate(results):
        values = list(lost_pcts(r).values())
        if values:
            fig.add_trace(go.Box(name=r.policy, x=[r.policy], marker_color=COLORS[k % len(COLORS)], **_quantiles(values)))
    return _layout(fig, "what each paying account lost to socializations, % of its equity at the time, per policy "
                   "(box: quartiles; whiskers: least and most)", "policy", "% of equity")


def sizing_curve(summary: list[dict]) -> go.Figure:
    """A sweep's insurance-sizing curve: P(socialization) against the vault
    size, per setting (the policy and any other swept axis)."""
    from perpclear.sweep import setting

    fig = go.Figure()
    for k, policy in enumerate(sorted({setting(r) for r in summary})):
        rows = sorted((r for r in summary if setting(r) == policy), key=lambda r: r["vault"])
        fig.add_trace(go.Scatter(
            x=[r["vault"] for r in rows], y=[100 * r["p_socialization"] for r in rows], mode="lines+markers",
            name=policy, line={"color": COLORS[k % len(COLORS)]},
            customdata=[[r["runs"], 100 * r["p_bad_debt"], r["expected_residual"], r["cvar99_residual"]] for r in rows],
            hovertemplate=(f"{policy}<br>vault %{{x:,.0f}}<br>P(socialization) %{{y:.2f}} % of %{{customdata[0]}} runs"
                           "<br>P(bad debt) %{customdata[1]:.2f} %<br>mean residual %{customdata[2]:,.2f}"
                           "<br>CVaR99 residual %{customdata[3]:,.2f}<extra></extra>")))
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, "insurance sizing: P(socialization) by vault size", "insurance vault (tokens)",
                   "P(socialization), % of runs")
