"""The ``perpclear`` command: results, exit codes, and one clear line for bad input."""

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "perpclear.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_prints_a_summary_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    p = run("run", "gap-30", "--network", "revm", "--traders", "20", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "scenario gap-30 (seed 2) on revm, policy EQUITY" in p.stdout
    assert "invariants: conservation ok" in p.stdout
    data = json.loads(out.read_text())
    assert data["scenario"] == "gap-30" and len(data["accounts"]) == 23
    assert not list(tmp_path.glob("*.tmp"))


def test_json_output_for_scripts():
    p = run("run", "mild-dip", "--network", "revm", "--traders", "5", "--json", "--policy", "OPEN_INTEREST", "--seed", "7")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert (data["policy"], data["seed"], data["backend"]) == ("OPEN_INTEREST", 7, "revm")


def test_scenarios_and_check(tmp_path):
    p = run("scenarios")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 5
    p = run("check", "contagion")
    assert p.returncode == 0 and "ok" in p.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "nope"), "error: nope: no such scenario file"),
        (("run", "gap-30", "--network", "mars:x"), "error: --network: 'mars:x' is not boa, revm or an ape network (No ecosystem named 'mars'.)"),
        (("run", "gap-30", "--traders", "0"), "Invalid value for '--traders'"),
        (("run", "gap-30", "--policy", "PROFIT"), "Invalid value for '--policy'"),
        (("run", "gap-30", "--out", "/nonexistent/dir/r.json"), "error: --out: directory /nonexistent/dir does not exist"),
        (("check", "BAD"), "error: BAD: no such scenario file"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(args, message):
    p = run(*args)
    assert p.returncode == 2
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_scenario_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[vault]\nassets = 1\n')
    p = run("check", str(bad))
    assert p.returncode == 2
    assert p.stderr.strip() == "error: bad.toml: markets: Field required"
