"""``perpclear``: run cascade scenarios from the command line.

    perpclear scenarios                         list the bundled scenarios
    perpclear check FILE                        validate a scenario file
    perpclear run SCENARIO [--network N] ...    run one, print a summary (or --json)
    perpclear sweep SCENARIO --seeds 1-200 --vault 0,5000 ...   insurance sizing over many runs

Exit codes: 0 done and every invariant held, 1 an invariant failed, 2 bad
arguments or a bad scenario (one line on stderr), 3 the chain refused a
transaction.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

import click

from perpclear.scenario import POLICIES, ScenarioError, bundled_scenarios, load_scenario

DEFAULT_ENGINE = "revm"


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and the exit code: never a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_or_fail(source: str, **overrides):
    try:
        sc = load_scenario(source)
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "count" in changes:
            changes["traders"] = {**sc.traders.model_dump(), "count": changes.pop("count")}
        return sc.with_overrides(**changes) if changes else sc
    except ScenarioError as exc:
        fail(str(exc))


def refuse_shared_chain(engine) -> None:
    """Cascades deploy a mock token and sign with keys derived from public
    labels: on a shared chain anyone could act for every account."""
    if not engine.devnet:
        fail(f"chain {engine.chain_id()} is not a local devnet: cascades sign with public keys; "
             "run them on a devnet (ape run deploy takes your own keys elsewhere)")


def engine_for(network: str):
    """A context manager yielding the engine: an in-process one, or an ape network."""
    from perpclear.engine import IN_PROCESS, ChainEngine

    if network in IN_PROCESS:
        return nullcontext(IN_PROCESS[network]())

    class _Ape:
        def __enter__(self):
            from ape import networks

            try:
                self._ctx = networks.parse_network_choice(network)
            except Exception as exc:  # ape raises several types for unknown choices
                reason = str(exc).splitlines()[0].removesuffix(" Options:")
                fail(f"--network: {network!r} is not boa, revm or an ape network ({reason})")
            self._ctx.__enter__()
            engine = ChainEngine.from_ape()
            refuse_shared_chain(engine)
            return engine

        def __exit__(self, *exc):
            return self._ctx.__exit__(*exc)

    return _Ape()


def progress_bar(quiet: bool):
    """A rich progress bar on stderr, one task per phase; silent with --json / --quiet."""
    if quiet:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )


def reporter(progress):
    tasks = {}

    def report(phase: str, done: int, total: int) -> None:
        if progress is None:
            return
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total)
        progress.update(tasks[phase], completed=done, total=total)

    return report


def summary_table(result) -> str:
    t = result.totals()
    unit = 10**result.decimals
    lines = [
        f"scenario {result.scenario} (seed {result.seed}) on {result.backend}, policy {result.policy}",
        f"  accounts {len(result.accounts)}, transactions {result.transactions}, {result.timings['total']:.1f} s",
        f"  liquidations {t['liquidations']}, bankruptcies {t['bankruptcies']}",
        f"  insurance paid {t['insurance_paid'] / unit:,.2f}, residual {t['residual'] / unit:,.2f}, "
        f"socialized {t['socialized'] / unit:,.2f}, left as bad debt {t['bad_debt'] / unit:,.2f}",
        f"  charged {t['charged'] / unit:,.2f} to {t['accounts_charged']} accounts",
        "  invariants: " + ", ".join(f"{k} {v if v == 'ok' else 'FAILED: ' + v}" for k, v in result.invariants.items()),
    ]
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """perpclear cascade scenarios. Example: perpclear run flash-crash --traders 500"""


@main.command("scenarios")
def scenarios_cmd() -> None:
    """Lists the bundled scenarios. Example: perpclear scenarios"""
    for path in bundled_scenarios():
        sc = load_scenario(path)
        click.echo(f"{sc.name:14s} {sc.traders.count:6d} traders  {sc.loss_policy:13s} {sc.description}")


@main.command("typed-data")
@click.option("--chain-id", type=click.IntRange(1), required=True, help="the chain the order book is on")
@click.option("--order-book", required=True, help="the order book's address (the EIP-712 verifying contract)")
def typed_data_cmd(chain_id: int, order_book: str) -> None:
    """Prints the EIP-712 typed data (types, domain, type string) a frontend signs
    orders with, as JSON. Example: perpclear typed-data --chain-id 31337 --order-book 0x5FbD...0aa3"""
    from eth_utils import is_address, to_checksum_address

    from perpclear.orders import domain_typed_data

    if not is_address(order_book):
        fail(f"--order-book: {order_book!r} is not an address")
    click.echo(json.dumps(domain_typed_data(chain_id, to_checksum_address(order_book)), indent=1))


@main.command("check")
@click.argument("scenario")
def check_cmd(scenario: str) -> None:
    """Validates a scenario file. Example: perpclear check my-scenario.toml"""
    sc = load_or_fail(scenario)
    click.echo(f"{scenario}: ok ({sc.name}, {sc.traders.count} traders, {len(sc.markets)} markets)")


@main.command("run")
@click.argument("scenario")
@click.option(
    "--network",
    default=DEFAULT_ENGINE,
    show_default=True,
    help="revm or boa (in process), or an ape network, e.g. ethereum:local:test or ethereum:local:foundry",
)
@click.option("--policy", type=click.Choice(list(POLICIES)), help="override the scenario's loss policy")
@click.option("--traders", "count", type=click.IntRange(1, 100_000), help="override the number of traders")
@click.option("--seed", type=click.IntRange(0), help="override the seed")
@click.option("--json", "as_json", is_flag=True, help="print the whole result as JSON on stdout")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="write the report here (report.json, charges.csv, report.html), as the ape scripts do; "
                   "a new or empty directory")
def run_cmd(scenario: str, network: str, policy, count, seed, as_json: bool, out: Path | None) -> None:
    """Runs a scenario (a file or a bundled name) and prints what happened.

    Example: perpclear run flash-crash --policy OPEN_INTEREST --traders 500
    """
    from perpclear.cascade import Cascade
    from perpclear.engine import EngineError, NodeError

    sc = load_or_fail(scenario, loss_policy=policy, seed=seed, count=count)
    if out is not None and not out.parent.is_dir():
        fail(f"--out: directory {out.parent} does not exist")
    if out is not None and out.is_dir() and any(out.iterdir()):
        fail(f"--out: {out} is not empty (a report goes into a new or empty directory)")
    with engine_for(network) as engine, progress_bar(as_json) as progress:
        try:
            result = Cascade(sc, engine, reporter(progress)).run()
        except NodeError as exc:
            fail(f"{exc}; nothing was written", code=4)
        except EngineError as exc:
            fail(str(exc), code=3)
    if out is not None:
        from perpclear.report import write_report

        write_report([result], folder=out)
    click.echo(result.to_json() if as_json else summary_table(result))
    if out is not None and not as_json:
        click.echo(f"report: {out / 'report.html'}")
    sys.exit(0 if result.ok else 1)


def _grid(option: str, text: str, parse) -> tuple:
    """"1-20" or "0,5000,20000" (or both, comma-separated) -> the values in order, once each."""
    values = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            if sep and lo:
                values += range(int(lo), int(hi) + 1)
            else:
                values.append(parse(part.strip()))
    except ValueError:
        fail(f"{option} {text!r}: a comma-separated list (ranges as 1-20)")
    if not values or any(v < 0 for v in values):
        fail(f"{option} {text!r}: give at least one value, none negative")
    return tuple(dict.fromkeys(values))


@main.command("sweep")
@click.argument("scenario")
@click.option("--seeds", default="1-20", show_default=True, help="seeds, e.g. 1-1000 or 1,5,9")
@click.option("--vault", "vaults", default="0", show_default=True, help="insurance vault sizes in whole tokens, e.g. 0,5000,20000")
@click.option("--policy", "policies", default="EQUITY,OPEN_INTEREST,ADL,PROFIT", show_default=True, help="loss policies, comma-separated")
@click.option("--traders", "count", type=click.IntRange(1, 100_000), help="override the number of traders")
@click.option("--keeper-delay", "delays", help="keeper delays in blocks to sweep, e.g. 0,2,5 (default: the scenario's)")
@click.option("--impact", "impacts", help="impact_bps of every market to sweep, e.g. 0,10,25 (default: the scenario's)")
@click.option("--leverage", "leverages", help="traders' maximum leverage to sweep, e.g. 3,5,8 (default: the scenario's)")
@click.option("--target", default=0.01, show_default=True, type=click.FloatRange(0, 1),
              help="the probability of socialization the vault must keep below")
@click.option("--workers", default=0, type=click.IntRange(0, 256), help="worker processes (default: every core)")
@click.option("--ray", "ray_address", metavar="ADDRESS", help="run on the Ray cluster at ADDRESS ('local' starts one "
              "here with --workers CPUs); needs pip install 'perpclear[cluster]'")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="directory of the runs and reports "
              "(default reports/sweep-SCENARIO); a sweep started again there runs only what is missing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON on stdout")
def sweep_cmd(scenario, seeds, vaults, policies, count, delays, impacts, leverages, target, workers, ray_address, out,
              as_json) -> None:
    """Runs a scenario over seeds, vault sizes and policies, and optionally
    keeper delays, impacts and leverages (revm, on every core or a Ray
    cluster), and answers: how big must the vault be to keep socialization rare?

    Example: perpclear sweep flash-crash --seeds 1-200 --vault 0,5000,20000 --policy EQUITY,ADL
    """
    from rich.console import Console
    from rich.table import Table

    from perpclear.sweep import Plan, run_sweep, setting, sizing, summarize, write_outputs

    sc = load_or_fail(scenario, count=count)
    names = tuple(dict.fromkeys(p.strip().upper() for p in policies.split(",")))
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        fail(f"--policy: {', '.join(unknown)} unknown (choose from {', '.join(POLICIES)})")
    axes = {"keeper_delays": (None,) if delays is None else _grid("--keeper-delay", delays, int),
            "impacts": (None,) if impacts is None else tuple(float(v) for v in _grid("--impact", impacts, float)),
            "leverages": (None,) if leverages is None else tuple(float(v) for v in _grid("--leverage", leverages, float))}
    plan = Plan(sc, _grid("--seeds", seeds, int), tuple(float(v) for v in _grid("--vault", vaults, float)), names, **axes)
    try:
        plan.check()
    except ScenarioError as exc:
        fail(f"a swept value does not fit {sc.name}: {exc}")
    out = out or Path("reports") / f"sweep-{sc.name}"
    with progress_bar(as_json) as progress:
        try:
            runs = run_sweep(plan, out, workers, reporter(progress), ray=ray_address)
        except ValueError as exc:
            fail(str(exc))
    summary = summarize(runs)
    answer = sizing(summary, target)
    write_outputs(out, runs, summary, answer, target, sc.name)
    if as_json:
        click.echo(json.dumps({"out": str(out), "target": target, "sizing": answer, "summary": summary}))
        return
    table = Table(title=f"{sc.name}: {len(plan.seeds)} seeds per cell, {len(runs)} runs", title_justify="left")
    for col in ("setting", "vault", "P(soc.)", "P(bad debt)", "mean resid.", "CVaR99", "med. % eq.", "worst % eq."):
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in sorted(summary, key=lambda r: (setting(r), r["vault"])):
        table.add_row(setting(r), f"{r['vault']:,.0f}", f"{r['p_socialization']:.1%}", f"{r['p_bad_debt']:.1%}",
                      f"{r['expected_residual']:,.2f}", f"{r['cvar99_residual']:,.2f}",
                      f"{r['median_charge_pct_equity']:.3f}", f"{r['worst_charge_pct_equity']:.3f}")
    Console(width=120).print(table)
    for policy, vault in answer.items():
        click.echo(f"{policy}: " + (f"a vault of {vault:,.0f} keeps P(socialization) <= {target:.1%}" if vault is not None
                                    else f"no vault size swept keeps P(socialization) <= {target:.1%}"))
    click.echo(f"report: {out / 'sweep.html'}")


if __name__ == "__main__":  # pragma: no cover
    main()
