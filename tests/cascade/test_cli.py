"""The ``perpclear`` command: results, exit codes, and one clear line for bad input."""

import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "perpclear.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_prints_a_summary_and_writes_the_report(tmp_path):
    out = tmp_path / "report"
    p = run("run", "gap-30", "--network", "revm", "--traders", "20", "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "scenario gap-30 (seed 2) on revm, policy EQUITY" in p.stdout
    assert "invariants: conservation ok" in p.stdout
    assert f"report: {out / 'report.html'}" in p.stdout
    # the same three files as the ape scripts write
    assert {f.name for f in out.iterdir()} == {"report.json", "charges.csv", "report.html"}
    (data,) = json.loads((out / "report.json").read_text())["runs"]
    assert data["scenario"] == "gap-30" and len(data["accounts"]) == 23 and data["fairness"]
    assert 'class="plotly-graph-div"' in (out / "report.html").read_text()
    # a directory holding something else is refused before anything runs
    p = run("run", "gap-30", "--network", "revm", "--traders", "20", "--out", str(out))
    assert p.returncode == 2 and p.stderr.strip() == f"error: --out: {out} is not empty (a report goes into a new or empty directory)"


def test_json_output_for_scripts():
    p = run("run", "mild-dip", "--network", "revm", "--traders", "5", "--json", "--policy", "OPEN_INTEREST", "--seed", "7")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert (data["policy"], data["seed"], data["backend"]) == ("OPEN_INTEREST", 7, "revm")


def test_typed_data_for_a_frontend():
    """The typed data a frontend signs with, checked against the contract's own
    digest in tests/unit/orderbook (same types, same domain)."""
    from perpclear.orders import Order, order_digest
    from eth_account.messages import encode_typed_data
    from eth_utils import keccak

    book = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    p = run("typed-data", "--chain-id", "31337", "--order-book", book)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["domain"] == {"name": "perpclear", "version": "1", "chainId": 31337,
                              "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
    assert data["typeString"] == ("Order(address trader,uint256 market,bool is_buy,uint256 size,"
                                  "uint256 limit_price,uint256 expiry,uint256 nonce,bool reduce_only,uint256 max_fee_bps)")
    order = Order(trader="0x" + "11" * 20, market=1, is_buy=True, size=5, limit_price=7, expiry=9, nonce=3)
    message = {**data, "message": {k: getattr(order, k) for k in order.__dataclass_fields__}}
    del message["typeString"]
    signable = encode_typed_data(full_message=message)
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == order_digest(
        order, 31337, data["domain"]["verifyingContract"])
    bad = run("typed-data", "--chain-id", "1", "--order-book", "0x12")
    assert bad.returncode == 2 and "error: --order-book: '0x12' is not an address" in bad.stderr


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
        (("run", "gap-30", "--policy", "NOPE"), "Invalid value for '--policy'"),
        (("run", "gap-30", "--out", "/nonexistent/dir/report"), "error: --out: directory /nonexistent/dir does not exist"),
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
