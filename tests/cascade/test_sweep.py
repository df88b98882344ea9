"""perpclear sweep: the same answer on one worker or two, a restart runs only
what is missing, the figures follow from the runs, bad arguments get one line,
and the HTML renders in headless Chromium."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import perpclear.sweep as sweep
from perpclear.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "perpclear.cli"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def plan(seeds=(1, 2, 3), vaults=(0.0, 10**6), policies=("EQUITY", "ADL")):
    sc = load_scenario("gap-30")
    sc = sc.with_overrides(traders={**sc.traders.model_dump(), "count": 12})
    return sweep.Plan(sc, seeds, vaults, policies)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    return sweep.run_sweep(plan(), tmp_path_factory.mktemp("one"), workers=1)


def test_sweep__two_workers_give_the_same_runs(one_worker, tmp_path):
    two = sweep.run_sweep(plan(), tmp_path, workers=2)
    assert two == one_worker
    assert [sweep.run_key(r) for r in two] == plan().keys()
    assert all(r["ok"] for r in two)


def test_sweep__a_local_ray_gives_the_same_runs(one_worker, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional cluster extra: make setup-cluster installs it (.ci/run does)")
    on_ray = sweep.run_sweep(plan(), tmp_path, workers=2, ray="local")
    assert on_ray == one_worker
    assert sweep.summarize(on_ray) == sweep.summarize(one_worker)


def test_sweep__ray_missing_or_unreachable_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as without the extra
    with pytest.raises(sweep.SweepError, match=r"^--ray needs the cluster extra: pip install 'perpclear\[cluster\]'$"):
        sweep.run_sweep(plan(seeds=(1,)), tmp_path, workers=1, ray="local")
    hidden = tmp_path / "no-ray" / "ray"  # a `ray` that fails to import, ahead of any installed one
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    p = subprocess.run([*CLI, "sweep", "gap-30", "--traders", "12", "--seeds", "1", "--ray", "local",
                        "--out", str(tmp_path / "cli")], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(hidden.parent)})
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == "error: --ray needs the cluster extra: pip install 'perpclear[cluster]'"
    assert "Traceback" not in p.stderr and not (tmp_path / "cli").exists()


def test_sweep__figures_follow_from_the_runs(one_worker):
    summary = {(r["policy"], r["vault"]): r for r in sweep.summarize(one_worker)}
    for policy in ("EQUITY", "ADL"):
        crash = [r for r in one_worker if r["policy"] == policy and r["vault"] == 0]
        row = summary[(policy, 0.0)]
        assert row["runs"] == 3
        assert row["p_socialization"] == sum(r["residual"] > 0 for r in crash) / 3 == 1.0  # a 30 % gap, no vault
        assert row["expected_residual"] == sum(r["residual"] for r in crash) / 3
        assert row["cvar99_residual"] == max(r["residual"] for r in crash)  # 1 % of 3 runs: the worst one
        covered = summary[(policy, 10.0**6)]
        assert covered["p_socialization"] == 0 and covered["worst_charge_pct_equity"] == 0
    assert sweep.sizing(list(summary.values()), 0.01) == {"ADL": 10.0**6, "EQUITY": 10.0**6}
    assert sweep.sizing(list(summary.values()), 1.0) == {"ADL": 0.0, "EQUITY": 0.0}


def test_sweep__cvar_and_sizing_by_hand():
    assert sweep.cvar([1.0, 5.0, 3.0]) == 5.0
    assert sweep.cvar(list(map(float, range(1, 201)))) == (200 + 199) / 2  # worst 1 % of 200: two runs
    rows = [{"policy": "EQUITY", "vault": v, "p_socialization": p} for v, p in ((0, 0.5), (100, 0.02), (500, 0.0))]
    assert sweep.sizing(rows, 0.01) == {"EQUITY": 500}
    assert sweep.sizing(rows[:2], 0.01) == {"EQUITY": None}


def test_sweep__a_restart_runs_only_what_is_missing(one_worker, tmp_path, monkeypatch):
    runs = tmp_path / "runs.jsonl"
    sweep.run_sweep(plan(seeds=(1,)), tmp_path, workers=1)
    assert len(runs.read_text().splitlines()) == 4
    runs.write_text(runs.read_text() + '{"policy": "EQU')  # a write cut short by an interruption
    calls = []
    real = sweep.run_one
    monkeypatch.setattr(sweep, "run_one", lambda *a: calls.append(a[1:]) or real(*a))
    again = sweep.run_sweep(plan(), tmp_path, workers=1)  # seeds 1-3 now: only 2 and 3 run
    assert sorted(calls) == sorted(k for k in plan().keys() if k[-1] != 1)
    assert again == one_worker
    other = load_scenario("flash-crash")
    with pytest.raises(ValueError, match="holds a sweep of another scenario"):
        sweep.run_sweep(sweep.Plan(other, (1,), (0.0,), ("EQUITY",)), tmp_path, workers=1)


def test_sweep__keeper_delay_impact_and_leverage_are_axes(tmp_path):
    """Each extra axis changes the scenario it names, and is a cell of its own in the summary and the sizing."""
    base = plan()
    grid = sweep.Plan(base.scenario, (1, 2), (0.0,), ("EQUITY",), keeper_delays=(0, 3), impacts=(0.0, 40.0),
                      leverages=(2.0, 6.0))
    assert len(grid.keys()) == 2 * 2 * 2 * 2
    sc = sweep.configured(base.scenario.model_dump(), 3, 40.0, 2.0)
    assert sc.keeper.delay_blocks == 3 and all(m.impact_bps == 40.0 for m in sc.markets)
    assert sc.traders.leverage.max == 2.0 and sc.traders.leverage.min <= 2.0
    assert sweep.configured(base.scenario.model_dump(), None, None, None) == base.scenario
    runs = sweep.run_sweep(grid, tmp_path, workers=1)
    summary = sweep.summarize(runs)
    assert len(summary) == 8 and all(r["runs"] == 2 for r in summary)
    cell = {(r["keeper_delay"], r["impact_bps"], r["leverage"]): r for r in summary}
    # more leverage: more is lost beyond the margin in the same gap
    assert cell[(0, 0.0, 6.0)]["expected_residual"] > cell[(0, 0.0, 2.0)]["expected_residual"]
    answer = sweep.sizing(summary, 1.0)
    assert set(answer) == {sweep.setting(r) for r in summary} and "EQUITY, keeper delay 3 blocks, impact 40 bps, leverage 6x" in answer
    with pytest.raises(ScenarioError, match="leverage"):  # 1 / imr of the market is the ceiling
        sweep.Plan(base.scenario, (1,), (0.0,), ("EQUITY",), leverages=(50.0,)).check()


def test_sweep__cli_json_files_and_bad_arguments(tmp_path):
    out = tmp_path / "s"
    p = subprocess.run([*CLI, "sweep", "gap-30", "--traders", "12", "--seeds", "1-2", "--vault", "0,1000000",
                        "--policy", "EQUITY", "--workers", "2", "--out", str(out), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(p.stdout)
    assert doc["sizing"] == {"EQUITY": 1_000_000.0} and len(doc["summary"]) == 2
    assert {f.name for f in out.iterdir()} == {"runs.jsonl", "runs.csv", "summary.json", "sweep.html", "sweep-plan.json"}
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 4
    for args, message in [
        (["--seeds", "a-b"], "error: --seeds 'a-b': a comma-separated list"),
        (["--vault", "-5"], "error: --vault '-5': give at least one value, none negative"),
        (["--policy", "EQUITY,PROFITS"], "error: --policy: PROFITS unknown"),
        (["--leverage", "50"], "error: a swept value does not fit gap-30: "),
        (["--keeper-delay", "x"], "error: --keeper-delay 'x': a comma-separated list"),
    ]:
        bad = subprocess.run([*CLI, "sweep", "gap-30", *args, "--out", str(tmp_path / "bad")], capture_output=True,
                             text=True, cwd=ROOT, timeout=120)
        assert bad.returncode == 2 and bad.stderr.strip() == bad.stderr.strip().splitlines()[0], bad.stderr
        assert message in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
def test_sweep__report_renders_in_headless_chromium(one_worker, tmp_path):
    summary = sweep.summarize(one_worker)
    sweep.write_outputs(tmp_path, one_worker, summary, sweep.sizing(summary, 0.01), 0.01, "gap-30")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + str(tmp_path / "profile"),
             "--virtual-time-budget=20000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", (tmp_path / "sweep.html").resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = dom.stdout.split('id="errors"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert errors.strip() == "" and dom.stdout.count('class="main-svg"') >= 2  # the sizing curve, drawn
    assert dom.stdout.count('class="scatterlayer') == 1 and dom.stdout.count("<tr>") == 1 + 4
    assert "EQUITY: 1,000,000 tokens" in dom.stdout and "ADL: 1,000,000 tokens" in dom.stdout
