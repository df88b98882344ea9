"""What the ape scripts do (``scripts/*.py`` are thin click fronts to these).

Each command runs on the network ape is connected to (``--network``), prints
tables rather than logs, and exits with a meaning: 0 done and every check
passed, 1 a check failed, 2 bad arguments (one line on stderr), 3 the chain
refused a transaction, 4 the node is not the one asked for or stopped
answering (one line, nothing written).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from perpclear.cascade import CONTRACT_NAMES, Cascade, CascadeResult, Deployment
from perpclear.cli import load_or_fail, progress_bar, reporter
from perpclear.engine import ChainEngine, EngineError, NodeError, artifact, as_int
from perpclear.orders import domain_typed_data
from perpclear.report import policy_figures, write_report
from perpclear.scenario import POLICIES

ROLE_NAMES = {-1: "market maker", -2: "liquidator", -3: "vault (margin)"}
# Chains that are devnets (ape's embedded chain, anvil, hardhat): governance
# acts at once there; anywhere else the timelock defaults to two days.
LOCAL_CHAIN_IDS = frozenset({1337, 31337, 131277322940537})
DEFAULT_TIMELOCK_DELAY = 2 * 86_400
MAX_TIMELOCK_DELAY = 30 * 86_400


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def refuse_throwaway_node() -> None:
    """A deployment must go to the node the user named: with APE_FOUNDRY_HOST
    set and nothing listening there, ape-foundry starts an anvil of its own at
    that address, and a manifest would record contracts that vanish with it."""
    import os

    from ape import chain

    host = os.environ.get("APE_FOUNDRY_HOST")
    if host and getattr(chain.provider, "process", None) is not None:
        fail(f"nothing listens at {host} (APE_FOUNDRY_HOST): ape-foundry started a throwaway anvil there; "
             "start your node first or unset APE_FOUNDRY_HOST; nothing was deployed", 4)


def network_label() -> str:
    from ape import chain

    p = chain.provider
    return f"{p.network.name}-{p.name}"


def _money(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:,.2f}"


def _who(index: int) -> str:
    return ROLE_NAMES.get(index, f"trader #{index}")


# ------------------------------------------------------------------ manifest


def manifest(d: Deployment, sc: Any, first_block: int) -> dict:
    addresses = d.addresses()
    return {
        "network": network_label(),
        "chain_id": d.engine.chain_id(),
        "block": first_block,
        "scenario": sc.name,
        "policy": sc.loss_policy,
        "decimals": sc.decimals,
        "markets": [m.model_dump() for m in sc.markets],
        "roles": {k: v.address for k, v in vars(d.roles).items()},
        "contracts": {k: {"address": a, "name": CONTRACT_NAMES[k], "abi": artifact(CONTRACT_NAMES[k]).abi} for k, a in addresses.items()},
        "eip712": domain_typed_data(d.engine.chain_id(), addresses["order_book"]),
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _is_live(engine: ChainEngine, data: dict) -> bool:
    if data.get("chain_id") != engine.chain_id():
        return False
    code = engine._rpc("eth_getCode", [data["contracts"]["clearing_house"]["address"], "latest"])
    return code not in ("0x", "0x0", None)


def deploy_command(scenario: str, policy: str | None, force: bool, out: str, timelock_delay: int | None = None) -> None:
    from perpclear.cascade import deploy

    sc = load_or_fail(scenario, loss_policy=policy)
    if timelock_delay is not None and not 0 <= timelock_delay <= MAX_TIMELOCK_DELAY:
        fail(f"--timelock-delay {timelock_delay}: between 0 and {MAX_TIMELOCK_DELAY} seconds (30 days)")
    refuse_throwaway_node()
    engine = ChainEngine.from_ape()
    if timelock_delay is None:
        timelock_delay = 0 if engine.chain_id() in LOCAL_CHAIN_IDS else DEFAULT_TIMELOCK_DELAY
    path = Path(out) / f"{network_label()}.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            fail(f"{path}: unreadable manifest ({exc}); remove it or pass --force") if not force else None
            old = {}
        if old and _is_live(engine, old) and not force:
            fail(f"{path}: a live deployment is recorded for this network; pass --force to overwrite it")
    first = as_int(engine._rpc("eth_blockNumber", [])) + 1
    try:
        d = deploy(engine, sc, timelock_delay=timelock_delay)
    except NodeError as exc:
        fail(f"{exc}; nothing was written", 4)
    except EngineError as exc:
        fail(str(exc), 3)
    written = {**manifest(d, sc, first), "timelock_delay": timelock_delay}
    _write_json(path, written)
    table = Table(title=f"perpclear deployed on {network_label()} (chain {engine.chain_id()}), from block {first}", title_justify="left")
    table.add_column("contract")
    table.add_column("address")
    for k, c in written["contracts"].items():
        table.add_row(k, c["address"])
    Console().print(table)
    print(f"timelock: {timelock_delay} s (governance calls of the clearing house, oracle and vault wait this long)")
    print(f"manifest: {path}")


# ------------------------------------------------------------------ runs


def run_on_chain(sc: Any, quiet: bool) -> tuple[CascadeResult, dict]:
    engine = ChainEngine.from_ape()
    first = as_int(engine._rpc("eth_blockNumber", [])) + 1
    runner = Cascade(sc, engine)
    with progress_bar(quiet) as progress:
        runner.progress = reporter(progress)
        try:
            result = runner.run()
        except NodeError as exc:
            fail(f"{exc}; nothing was written", 4)
        except EngineError as exc:
            fail(str(exc), 3)
    return result, manifest(runner.d, sc, first)


def story(result: CascadeResult, console: Console) -> None:
    """Who was liquidated, what the vault paid, the residual, who paid what."""
    dec, t = result.decimals, result.totals()
    console.print(f"[bold]{result.scenario}[/] on {result.backend}: {len(result.accounts) - 3} traders, "
                  f"policy {result.policy}, {len(result.blocks)} blocks, {result.transactions} transactions")
    timeline = Table(title="The cascade, block by block", title_justify="left")
    for col in ("block", "marks", "liquidations", "vault assets", "bad debt"):
        timeline.add_column(col, justify="right")
    for b in result.blocks:
        timeline.add_row(str(b["block"]), ", ".join(_money(p, dec) for p in b["marks"]), str(b["liquidations"]),
                         _money(b["vault_assets"], dec), _money(b["bad_debt"], dec))
    console.print(timeline)
    by_account: dict[str, int] = {}
    for liq in result.liquidations:
        by_account[liq["account"]] = by_account.get(liq["account"], 0) + 1
    bankrupt = {b["account"] for b in result.bankruptcies}
    deleveraged = {run["account"] for run in result.adl_runs}
    console.print(f"Liquidated: {len(by_account)} accounts in {t['liquidations']} liquidations"
                  + (f", {len(deleveraged)} deleveraged (ADL)" if deleveraged else "") + f"; {len(bankrupt)} went bankrupt.")
    console.print(f"The insurance vault paid {_money(t['insurance_paid'], dec)}; the residual it could not cover, "
                  f"{_money(t['residual'], dec)}, went to {result.policy} in the same transactions "
                  f"({_money(t['socialized'], dec)} socialized, {_money(t['bad_debt'], dec)} left as bad debt).")
    if t["deleveraged"]:
        console.print(f"ADL closed {t['deleveraged']} opposite positions at bankruptcy prices, covering "
                      f"{_money(t['adl_residual'], dec)} that the vault could not.")
    payers = sorted((a for a in result.accounts if a.charged > 0), key=lambda a: -a.charged)
    table = Table(title=f"Who paid what under {result.policy}", title_justify="left")
    for col in ("account", "deposit", "end equity + charge", "charged", "% of that"):
        table.add_column(col, justify="left" if col == "account" else "right")
    for a in payers[:15]:
        before = a.equity + a.charged
        table.add_row(_who(a.index), _money(a.deposit, dec), _money(before, dec), _money(a.charged, dec),
                      f"{100 * a.charged / before:.3f} %" if before > 0 else "-")
    if len(payers) > 15:
        rest = payers[15:]
        table.add_row(f"{len(rest)} more", "", "", _money(sum(a.charged for a in rest), dec), "")
    table.add_row("[bold]total[/]", "", "", f"[bold]{_money(t['charged'], dec)}[/]", "")
    console.print(table)
    broken = {k: v for k, v in result.invariants.items() if v != "ok"}
    console.print("Invariants: " + ("[green]all hold[/] (" + ", ".join(result.invariants) + ")" if not broken else f"[red]broken[/] {broken}"))


def cascade_command(scenario: str, policy=None, traders=None, seed=None, as_json=False, reports="reports") -> None:
    sc = load_or_fail(scenario, loss_policy=policy, count=traders, seed=seed)
    result, deployed = run_on_chain(sc, as_json)
    out = write_report([result], reports)
    _write_json(out / "deployment.json", deployed)
    if as_json:
        print(json.dumps({"report": str(out), "result": asdict(result)}))
    else:
        story(result, Console())
        print(f"report: {out / 'report.html'}")
    sys.exit(0 if result.ok else 1)


def demo_command(traders: int = 60, reports: str = "reports") -> Path:
    """The flash crash on the connected network, told as a story, with its report."""
    sc = load_or_fail("flash-crash", count=traders)
    result, deployed = run_on_chain(sc, quiet=False)
    out = write_report([result], reports)
    _write_json(out / "deployment.json", deployed)
    console = Console()
    story(result, console)
    # The same crash under every policy, replayed in process (revm gives the
    # same per-account results as any chain: tests/cascade).
    from perpclear.cascade import run_cascade
    from perpclear.engine import RevmEngine

    others = {p: run_cascade(sc.with_overrides(loss_policy=p), RevmEngine()) for p in POLICIES}
    console.print(comparison_table(sc.name, [policy_figures(r) for r in others.values()]))
    payers = Table(title="Who paid what, per policy (largest five)", title_justify="left")
    for p in others:
        payers.add_column(p)
        payers.add_column("charged", justify="right")
    tops = {p: sorted((a for a in r.accounts if a.charged > 0), key=lambda a: -a.charged)[:5] for p, r in others.items()}
    for i in range(5):
        cells = []
        for p, top in tops.items():
            cells += [_who(top[i].index), _money(top[i].charged, sc.decimals)] if i < len(top) else ["", ""]
        payers.add_row(*cells)
    console.print(payers)
    print(f"report: {out / 'report.html'}")
    if not result.ok:
        sys.exit(1)
    return out


def compare_command(scenario: str, traders=None, seed=None, as_json=False, reports="reports") -> None:
    sc = load_or_fail(scenario, count=traders, seed=seed)
    results = [run_on_chain(sc.with_overrides(loss_policy=p), as_json)[0] for p in POLICIES]
    out = write_report(results, reports)
    figures = [policy_figures(r) for r in results]
    if as_json:
        print(json.dumps({"report": str(out), "comparison": figures}))
    else:
        Console().print(comparison_table(sc.name, figures))
        print(f"report: {out / 'report.html'}")
    sys.exit(0 if all(r.ok for r in results) else 1)


def comparison_table(name: str, figures: list[dict]) -> Table:
    table = Table(title=f"{name}: the same crash under each loss policy", title_justify="left")
    table.add_column("")
    for f in figures:
        table.add_column(f["policy"], justify="right")
    rows = [
        ("total charged", "total_charged", "{:,.2f}"), ("accounts charged", "accounts_charged", "{:d}"),
        ("largest single charge", "largest_charge", "{:,.2f}"), ("median charge, % of equity", "median_charge_pct_equity", "{:.3f} %"),
        ("largest charge, % of equity", "max_charge_pct_equity", "{:.3f} %"), ("insurance used", "insurance_used", "{:,.2f}"),
        ("left as bad debt", "bad_debt", "{:,.2f}"), ("fairness: spread of % charged (pp)", "fairness_spread_pp", "{:.4f}"),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *(fmt.format(f[key]) for f in figures))
    return table


def audit_command(manifest_path: str | None, from_block: int | None, as_json: bool) -> None:
    from perpclear.audit import run_audit

    path = Path(manifest_path) if manifest_path else Path("deployments") / f"{network_label()}.json"
    if not path.is_file():
        fail(f"{path}: no such deployment manifest (ape run deploy writes one; cascade runs keep theirs in the report folder)")
    try:
        data = json.loads(path.read_text())
        addresses = {k: c["address"] for k, c in data["contracts"].items()}
        start = data.get("block", 0) if from_block is None else from_block
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        fail(f"{path}: not a perpclear manifest ({exc})")
    engine = ChainEngine.from_ape()
    if data.get("chain_id") != engine.chain_id():
        fail(f"{path}: recorded for chain {data.get('chain_id')}, connected to chain {engine.chain_id()}")
    if not _is_live(engine, data):
        fail(f"{path}: no clearing house at {addresses['clearing_house']} on this network (a fresh node?)")
    try:
        verdict, records = run_audit(engine, addresses, start)
    except NodeError as exc:
        fail(f"{exc}; no verdict", 4)
    if as_json:
        print(json.dumps({"ok": verdict.ok, "events": len(records), "verdict": verdict.rows(), "notes": verdict.notes}))
    else:
        table = Table(title=f"Audit of {path} ({len(records)} events from block {start})", title_justify="left")
        for col in ("guarantee", "checked", "result", "first failure"):
            table.add_column(col, justify="right" if col == "checked" else "left", overflow="fold")
        for row in verdict.rows():
            style = "green" if row["result"] == "ok" else "red"
            table.add_row(row["guarantee"], str(row["checked"]), f"[{style}]{row['result']}[/]", row["first failure"])
        Console().print(table)
        print("verdict: " + ("every guarantee holds" if verdict.ok else "MISMATCH"))
    sys.exit(0 if verdict.ok else 1)
