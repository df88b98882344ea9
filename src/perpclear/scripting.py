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

from perpclear.cascade import Cascade
from perpclear.deployment import CONTRACT_NAMES, Deployment
from perpclear.results import CascadeResult
from perpclear.units import MAX_TIMELOCK_DELAY
from perpclear.charts import lost_pcts
from perpclear.cli import fail, load_or_fail, progress_bar, refuse_shared_chain, reporter
from perpclear.engine import ChainEngine, EngineError, NodeError, artifact
from perpclear.orders import domain_typed_data
from perpclear.report import policy_figures, write_atomic, write_report
from perpclear.units import POLICIES

ROLE_NAMES = {-1: "market maker", -2: "liquidator", -3: "vault (margin)"}
# Off devnets (engine.DEVNET_CHAIN_IDS) the timelock defaults to two days.
DEFAULT_TIMELOCK_DELAY = 2 * 86_400
# Off devnets the keeper's marks are bounded by default: 10 % per 5 minutes.
DEFAULT_MAX_MOVE_BPS, DEFAULT_MOVE_WINDOW = 1_000, 300


# ------------------------------------------------------------------ role keys


class ApeSigner:
    """An ape account (a keyfile alias, a hardware wallet, a test account) as a
    signer of the engines: ``address`` and ``sign_transaction(dict)``."""

    def __init__(self, account: Any):
        self.account = account
        self.address = str(account.address)

    def sign_transaction(self, tx: dict) -> Any:
        from types import SimpleNamespace

        ecosystem = self.account.provider.network.ecosystem
        signed = self.account.sign_transaction(ecosystem.create_transaction(**tx))
        if signed is None:
            fail(f"{self.address} declined to sign; nothing more was sent", 3)
        return SimpleNamespace(raw_transaction=signed.serialize_transaction())


class HeldElsewhere:
    """A role whose key is not here (a Safe, another team's bot): known by address only."""

    def __init__(self, address: str):
        self.address = address

    def sign_transaction(self, tx: dict) -> Any:
        raise RuntimeError(f"{self.address} holds its role elsewhere: perpclear does not sign for it")


def public_keys() -> dict[str, str]:
    """Addresses whose private keys anyone can compute -> where they come from."""
    from ape.utils.testing import DEFAULT_TEST_MNEMONIC, generate_dev_accounts

    from perpclear.deployment import ROLE_LABELS, labelled_key

    known = {a.address: "a key of the standard dev mnemonic" for a in generate_dev_accounts(DEFAULT_TEST_MNEMONIC, 20)}
    known.update({labelled_key(label).address: f'a key derived from "perpclear:{label}"' for label in ROLE_LABELS})
    return known


def resolve_role(option: str, value: str, local: bool) -> Any:
    """``--admin``/``--keeper``/``--matcher``/``--owner``: an ape account alias (or
    TEST::n on a devnet), or an address for a role held elsewhere. Off devnets a
    key anyone can compute is refused."""
    from ape import accounts
    from eth_utils import is_address, to_checksum_address

    if is_address(value):
        role: Any = HeldElsewhere(to_checksum_address(value))
    elif value.upper().startswith("TEST::"):
        if not local:
            fail(f"{option} {value}: ape's test accounts come from a mnemonic in a config file; "
                 "on a shared chain name an account of your own (ape accounts list)")
        index = value[6:]
        if not index.isdigit() or int(index) >= len(accounts.test_accounts):
            fail(f"{option} {value}: no such test account")
        role = ApeSigner(accounts.test_accounts[int(index)])
    elif value in accounts.aliases:
        role = ApeSigner(accounts.load(value))
    else:
        fail(f"{option} {value}: neither an address nor an ape account alias (ape accounts list)")
    known = {} if local else public_keys()
    if role.address in known:
        fail(f"{option} {value}: {role.address} is {known[role.address]}, which anyone can sign with; "
             "name a key of your own")
    return role


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
        # Who holds what the contracts know: the owner, the keepers (oracle and
        # clearing house; the keeper also operates the keeper contract, the
        # liquidator is a clearing-house keeper) and the matcher.
        "roles": {k: getattr(d.roles, k).address for k in ("admin", "keeper", "liquidator", "matcher")},
        "contracts": {k: {"address": a, "name": CONTRACT_NAMES[k], "abi": artifact(CONTRACT_NAMES[k]).abi} for k, a in addresses.items()},
        "eip712": domain_typed_data(d.engine.chain_id(), addresses["order_book"]),
    }


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1))


def _is_live(engine: ChainEngine, data: dict) -> bool:
    if data.get("chain_id") != engine.chain_id():
        return False
    return bool(engine.code(data["contracts"]["clearing_house"]["address"]))


def named_roles(local: bool, admin: str | None, keeper: str | None, matcher: str | None) -> Any:
    """The deployment's roles: the named ones, the derived devnet keys for the rest.
    Off devnets every role must be named and none may be a public key."""
    from perpclear.deployment import Roles

    named = {"--admin": admin, "--keeper": keeper, "--matcher": matcher}
    missing = [k for k, v in named.items() if not v]
    if not local and missing:
        fail(f"this chain is not a local devnet and the default role keys are public: name {', '.join(missing)} "
             "(an ape account alias; an address for a role held elsewhere)")
    roles = Roles()
    if admin:
        roles.admin = resolve_role("--admin", admin, local)
        if isinstance(roles.admin, HeldElsewhere):
            fail(f"--admin {admin}: the admin deploys and so must sign here (an ape account alias); "
                 "hand ownership to a Safe with --owner ADDRESS")
    if keeper:
        roles.keeper = roles.liquidator = resolve_role("--keeper", keeper, local)
    if matcher:
        roles.matcher = resolve_role("--matcher", matcher, local)
    return roles


def deploy_command(scenario: str, policy: str | None, force: bool, out: str, timelock_delay: int | None = None,
                   admin: str | None = None, keeper: str | None = None, matcher: str | None = None,
                   owner: str | None = None, max_move_bps: int | None = None, move_window: int | None = None) -> None:
    from perpclear.deployment import deploy
    from perpclear.system import ORACLE_MAX_AGE

    sc = load_or_fail(scenario, loss_policy=policy)
    if timelock_delay is not None and not 0 <= timelock_delay <= MAX_TIMELOCK_DELAY:
        fail(f"--timelock-delay {timelock_delay}: between 0 and {MAX_TIMELOCK_DELAY} seconds (30 days)")
    refuse_throwaway_node()
    engine = ChainEngine.from_ape()
    local = engine.devnet
    roles = named_roles(local, admin, keeper, matcher)
    new_owner = resolve_role("--owner", owner, local).address if owner else None
    if timelock_delay is None:
        timelock_delay = 0 if local else DEFAULT_TIMELOCK_DELAY
    if max_move_bps is None:
        max_move_bps = 0 if local else DEFAULT_MAX_MOVE_BPS
    if move_window is None:
        move_window = 1 if local else DEFAULT_MOVE_WINDOW
    path = Path(out) / f"{network_label()}.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            fail(f"{path}: unreadable manifest ({exc}); remove it or pass --force") if not force else None
            old = {}
        if old and _is_live(engine, old) and not force:
            fail(f"{path}: a live deployment is recorded for this network; pass --force to overwrite it")
    first = engine.block_number() + 1
    # A keyfile account asks for its passphrase once (or reads
    # APE_ACCOUNTS_<alias>_PASSPHRASE) and then signs this deployment's transactions.
    autosign = getattr(getattr(roles.admin, "account", None), "set_autosign", None)
    try:
        if autosign:
            autosign(True)
        d = deploy(engine, sc, roles, timelock_delay=timelock_delay, fund_gas=admin is None, oracle_max_age=ORACLE_MAX_AGE,
                   max_move_bps=max_move_bps, move_window=move_window)
        if new_owner:
            engine.send([d.tx(roles.admin, c, "transfer_ownership", new_owner)
                         for c in (d.clearing_house, d.order_book, d.oracle, d.vault, d.keeper)])
    except NodeError as exc:
        fail(f"{exc}; nothing was written", 4)
    except EngineError as exc:
        fail(str(exc), 3)
    finally:
        if autosign:
            autosign(False)
    written = {**manifest(d, sc, first), "timelock_delay": timelock_delay,
               "oracle": {"max_age": ORACLE_MAX_AGE, "max_move_bps": max_move_bps, "move_window": move_window}}
    written["roles"]["pending_owner"] = new_owner
    _write_json(path, written)
    table = Table(title=f"perpclear deployed on {network_label()} (chain {engine.chain_id()}), from block {first}", title_justify="left")
    table.add_column("contract")
    table.add_column("address")
    for k, c in written["contracts"].items():
        table.add_row(k, c["address"])
    Console().print(table)
    print(f"timelock: {timelock_delay} s (governance calls of the clearing house, oracle, vault and keeper wait this long)")
    print(f"oracle: marks stale after {ORACLE_MAX_AGE} s; a keeper moves them at most "
          + (f"{max_move_bps / 100:g} % per {move_window} s" if max_move_bps else "without limit (a devnet: crash scenarios)"))
    if new_owner:
        print(f"ownership proposed to {new_owner}: it takes over each contract when it calls accept_ownership() there")
    print(f"manifest: {path}")


# ------------------------------------------------------------------ runs


def run_on_chain(sc: Any, quiet: bool) -> tuple[CascadeResult, dict]:
    engine = ChainEngine.from_ape()
    refuse_shared_chain(engine)
    first = engine.block_number() + 1
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
    if result.clawback_runs:
        console.print(f"PROFIT clawed back {_money(t['clawed_back'], dec)} from the accounts in profit in "
                      f"{len(result.clawback_runs)} runs, before the vault paid the rest of each bankruptcy.")
    payers = sorted((a for a in result.accounts if a.charged > 0), key=lambda a: -a.charged)
    table = Table(title=f"Who paid what under {result.policy}", title_justify="left")
    lost = lost_pcts(result)
    for col in ("account", "deposit", "equity now", "charged", "lost, % of equity then"):
        table.add_column(col, justify="left" if col == "account" else "right")
    for a in payers[:15]:
        pct = lost.get(a.address)
        table.add_row(_who(a.index), _money(a.deposit, dec), _money(a.equity, dec), _money(a.charged, dec),
                      f"{pct:.4f} %" if pct is not None else "-")
    if len(payers) > 15:
        rest = payers[15:]
        table.add_row(f"{len(rest)} more", "", "", _money(sum(a.charged for a in rest), dec), "")
    table.add_row("[bold]total[/]", "", "", f"[bold]{_money(t['charged'], dec)}[/]", "")
    if t["withheld_to_insurance"]:
        console.print(f"Negative shares of underwater accounts withheld for the insurance vault: "
                      f"{_money(t['withheld_to_insurance'], dec)}")
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
        ("largest single charge", "largest_charge", "{:,.2f}"),
        ("median loss, % of equity then", "median_charge_pct_equity", "{:.3f} %"),
        ("largest loss, % of equity then", "max_charge_pct_equity", "{:.3f} %"), ("insurance used", "insurance_used", "{:,.2f}"),
        ("left as bad debt", "bad_debt", "{:,.2f}"),
        ("fairness: largest spread of % charged in one event (pp)", "fairness_spread_pp", "{:.4f}"),
    ]
    for label, key, fmt in rows:
        table.add_row(label, *("n/a" if f[key] is None else fmt.format(f[key]) for f in figures))
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
