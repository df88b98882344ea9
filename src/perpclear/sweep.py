"""Insurance sizing: one scenario over seeds, vault sizes and policies.

    perpclear sweep flash-crash --seeds 1-200 --vault 0,5000,20000 --policy EQUITY,ADL

Each run is one cascade on revm (``run_cascade``), deterministic per seed, so
the tables are the same whatever the number of worker processes. Runs are
kept one JSON line each in ``OUT/runs.jsonl`` as they finish: a sweep that is
interrupted and started again with the same arguments runs only what is
missing. Per (policy, vault size) the summary gives the probability of a
socialization (a residual beyond the vault) and of bad debt, the expected
residual and its 99 % CVaR (the mean of the worst 1 % of runs, at least one
run), and the median and worst charge as % of equity; the sizing answer is
the smallest vault size swept whose probability of socialization is at most
the target.

Runs go to a local process pool (``workers``, every core by default) or to a
Ray cluster (``ray="ADDRESS"``; ``ray="local"`` starts one on this machine
bound to 127.0.0.1). Ray is the optional ``cluster`` extra
(``pip install 'perpclear[cluster]'``); each node of a cluster needs the same
perpclear installed. Either way a run is the same pure function of its
(policy, vault, seed), so the tables are identical.
"""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import math
import os
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from perpclear.scenario import Scenario, parse_scenario

# Axes swept besides policy, vault and seed; None in a run: as in the scenario.
AXES = ("keeper_delay", "impact_bps", "leverage")
# One line per run, in this order (the CSV's columns too).
FIELDS = ("policy", "vault", *AXES, "seed", "residual", "insurance_paid", "socialized", "bad_debt", "liquidations",
          "bankruptcies", "median_charge_pct_equity", "max_charge_pct_equity", "ok")


@dataclass(frozen=True)
class Plan:
    """What to sweep: the scenario (validated, overrides applied) and the grid.

    ``keeper_delays`` sets the keeper's ``delay_blocks``, ``impacts`` every
    market's ``impact_bps``, ``leverages`` the traders' maximum leverage (the
    minimum is lowered to it if above); ``(None,)``: as in the scenario."""

    scenario: Scenario
    seeds: tuple[int, ...]
    vaults: tuple[float, ...]  # whole tokens in the insurance vault
    policies: tuple[str, ...]
    keeper_delays: tuple[int | None, ...] = (None,)
    impacts: tuple[float | None, ...] = (None,)
    leverages: tuple[float | None, ...] = (None,)

    def keys(self) -> list[tuple]:
        """(policy, vault, keeper delay, impact, leverage, seed) of every run."""
        return [(p, float(v), d, i, lev, s) for p in self.policies for v in self.vaults for d in self.keeper_delays
                for i in self.impacts for lev in self.leverages for s in self.seeds]

    def header(self) -> dict:
        """What makes two sweeps the same sweep (the grid may grow)."""
        sc = self.scenario.model_dump()
        for k in ("seed", "loss_policy", "vault"):
            sc.pop(k)
        return {"scenario": sc}

    def check(self) -> None:
        """Raises ScenarioError (one line) for a grid value the scenario refuses, before anything runs."""
        for d, i, lev in {k[2:5] for k in self.keys()}:
            configured(self.scenario.model_dump(), d, i, lev)


def configured(scenario: dict, keeper_delay: int | None, impact_bps: float | None, leverage: float | None) -> Scenario:
    """The scenario with the swept axes applied (validated)."""
    data = copy.deepcopy(scenario)
    if keeper_delay is not None:
        data["keeper"]["delay_blocks"] = keeper_delay
    if impact_bps is not None:
        for market in data["markets"]:
            market["impact_bps"] = impact_bps
    if leverage is not None:
        data["traders"]["leverage"] = {"min": min(data["traders"]["leverage"]["min"], leverage), "max": leverage}
    return parse_scenario(data, origin=data["name"])


def run_key(run: dict) -> tuple:
    """The grid key of a stored run (runs stored before the extra axes: None)."""
    return (run["policy"], float(run["vault"]), *(run.get(a) for a in AXES), run["seed"])


def run_one(scenario: dict, policy: str, vault: float, keeper_delay: int | None, impact_bps: float | None,
            leverage: float | None, seed: int) -> dict:
    """One cascade of the grid, summarised (top level: it runs in a worker process)."""
    from perpclear.cascade import run_cascade
    from perpclear.engine import RevmEngine
    from perpclear.report import policy_figures

    sc = configured({**scenario, "seed": seed, "loss_policy": policy, "vault": {"assets": vault}},
                    keeper_delay, impact_bps, leverage)
    result = run_cascade(sc, RevmEngine())
    t, f, unit = result.totals(), policy_figures(result), sc.unit
    return {
        "policy": policy, "vault": vault, "keeper_delay": keeper_delay, "impact_bps": impact_bps, "leverage": leverage,
        "seed": seed,
        # beyond the vault: placed by the policy (ADL: closed against counterparties first)
        "residual": (t["residual"] + t["adl_residual"]) / unit, "insurance_paid": t["insurance_paid"] / unit,
        "socialized": t["socialized"] / unit, "bad_debt": t["bad_debt"] / unit,
        "liquidations": t["liquidations"], "bankruptcies": t["bankruptcies"],
        "median_charge_pct_equity": f["median_charge_pct_equity"], "max_charge_pct_equity": f["max_charge_pct_equity"],
        "ok": result.ok,
    }


class SweepError(ValueError):
    """The sweep cannot run as asked (another sweep in ``out``, Ray missing or unreachable)."""


def run_sweep(plan: Plan, out: Path, workers: int = 0, progress: Callable[[str, int, int], None] | None = None,
              ray: str | None = None) -> list[dict]:
    """Every run of ``plan``, those stored in ``out`` reused; sorted by (policy, vault, seed).

    ``workers``: processes of the local pool (0: every core); with ``ray``,
    the CPUs of the Ray instance started for ``ray="local"``."""
    progress = progress or (lambda phase, done, total: None)
    workers = workers or os.cpu_count() or 1
    plan.check()
    session = _ray_session(ray, workers) if ray else None  # refused before anything is written
    try:
        out.mkdir(parents=True, exist_ok=True)
        header_path, runs_path = out / "sweep-plan.json", out / "runs.jsonl"
        header = plan.header()
        if header_path.exists() and json.loads(header_path.read_text()) != header:
            raise SweepError(f"{out} holds a sweep of another scenario or parameters: choose another --out")
        header_path.write_text(json.dumps(header, indent=1))
        done: dict[tuple, dict] = {}
        if runs_path.exists():
            for line in runs_path.read_text().splitlines():
                try:
                    run = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of an interrupted write
                done[run_key(run)] = run
        todo = [k for k in plan.keys() if k not in done]
        total = len(plan.keys())
        progress("sweep", total - len(todo), total)
        scenario = plan.scenario.model_dump()
        runs = _on_ray(session, scenario, todo) if session else _on_pool(scenario, todo, workers)
        with runs_path.open("a") as sink:
            for finished, run in enumerate(runs, start=total - len(todo) + 1):  # each kept at once: a restart skips it
                done[run_key(run)] = run
                sink.write(json.dumps(run) + "\n")
                sink.flush()
                progress("sweep", finished, total)
    finally:
        if session:
            session.shutdown()
    return [done[k] for k in plan.keys()]


def _on_pool(scenario: dict, todo: list[tuple], workers: int) -> Iterator[dict]:
    """The runs on a local process pool (in this process for one worker), as they finish."""
    if workers == 1 or len(todo) <= 1:
        yield from (run_one(scenario, *key) for key in todo)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        for future in as_completed([pool.submit(run_one, scenario, *key) for key in todo]):
            yield future.result()


def _ray_session(address: str, workers: int):
    """The ``ray`` module, connected to the cluster at ``address`` ("local": a new one here)."""
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs the cluster extra: pip install 'perpclear[cluster]'") from None
    import logging

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # no GPUs here: silences Ray's notice about them
    options: dict = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":  # a private instance on 127.0.0.1, sized to the workers asked for
        options.update(address="local", num_cpus=workers, _node_ip_address="127.0.0.1",
                       object_store_memory=256 * 2**20)
    else:
        options.update(address=address)
    try:
        ray.init(**options)
    except Exception as exc:  # ConnectionError, or Ray's own errors for a bad address
        raise SweepError(f"--ray {address}: cannot reach a Ray cluster ({str(exc).splitlines()[0]})") from None
    return ray


def _on_ray(ray, scenario: dict, todo: list[tuple]) -> Iterator[dict]:
    """The runs as Ray tasks, as they finish."""
    task = ray.remote(run_one)
    pending = [task.remote(scenario, *key) for key in todo]  # key: (policy, vault, axes..., seed)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield ray.get(ready[0])


def cvar(values: list[float], level: float = 0.99) -> float:
    """Mean of the worst (1 - level) share of ``values``, at least one value."""
    count = math.ceil(round(len(values) * (1 - level), 9))  # 1 - 0.99 is not exactly 0.01
    worst = sorted(values, reverse=True)[: max(1, count)]
    return sum(worst) / len(worst)


def setting(row: dict) -> str:
    """A grid cell's name without its vault: the policy and each swept axis."""
    names = {"keeper_delay": "keeper delay {:g} blocks", "impact_bps": "impact {:g} bps", "leverage": "leverage {:g}x"}
    return ", ".join([row["policy"]] + [names[a].format(row[a]) for a in AXES if row.get(a) is not None])


def summarize(runs: list[dict]) -> list[dict]:
    """Per grid cell (policy, vault size and any swept axis): the risk figures over the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault(run_key(run)[:-1], []).append(run)
    rows = []
    for (policy, vault, *axes), group in groups.items():
        residuals = [r["residual"] for r in group]
        charged = [r for r in group if r["max_charge_pct_equity"]]  # None or 0: nobody charged
        rows.append({
            "policy": policy, "vault": vault, **dict(zip(AXES, axes)), "runs": len(group),
            "p_socialization": sum(1 for r in residuals if r > 0) / len(group),
            "p_bad_debt": sum(1 for r in group if r["bad_debt"] > 0) / len(group),
            "expected_residual": sum(residuals) / len(group),
            "cvar99_residual": cvar(residuals),
            "median_charge_pct_equity": statistics.median(r["median_charge_pct_equity"] for r in charged) if charged else 0.0,
            "worst_charge_pct_equity": max((r["max_charge_pct_equity"] for r in charged), default=0.0),
            "all_invariants_hold": all(r["ok"] for r in group),
        })
    return rows


def sizing(summary: list[dict], target: float) -> dict[str, float | None]:
    """Per setting (policy and swept axes): the smallest vault size swept with
    P(socialization) <= ``target`` (None: none is enough)."""
    answer: dict[str, float | None] = {}
    for row in sorted(summary, key=lambda r: (setting(r), r["vault"])):
        answer.setdefault(setting(row), None)
        if answer[setting(row)] is None and row["p_socialization"] <= target:
            answer[setting(row)] = row["vault"]
    return answer


def write_outputs(out: Path, runs: list[dict], summary: list[dict], answer: dict, target: float, name: str) -> None:
    """runs.csv (every run), summary.json and sweep.html, each written whole or not at all."""
    from perpclear.charts import sizing_curve
    from perpclear.report import figure, page, table as html_table, write_atomic as write

    table = io.StringIO()
    writer = csv.DictWriter(table, FIELDS)
    writer.writeheader()
    writer.writerows(runs)
    write(out / "runs.csv", table.getvalue())
    write(out / "summary.json", json.dumps({"scenario": name, "target": target, "sizing": answer, "summary": summary}, indent=1))
    answers = "".join(f"<li>{html.escape(p)}: {'no vault size swept is enough' if v is None else f'{v:,.0f} tokens'}</li>"
                      for p, v in answer.items())
    swept = [a for a in AXES if any(r.get(a) is not None for r in summary)]
    rows = [{k: v for k, v in r.items() if k not in AXES or k in swept}
            for r in sorted(summary, key=lambda r: (setting(r), r["vault"]))]
    body = (f"<p>Smallest insurance vault with P(socialization) &le; {target:.2%}:</p><ul id=\"sizing\">{answers}</ul>"
            + figure(sizing_curve(summary)) + f'<div id="summary">{html_table(rows, sortable=True)}</div>')
    write(out / "sweep.html", page(f"perpclear sweep: {name}", body))
