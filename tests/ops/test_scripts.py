"""The ape scripts as a user runs them: separate processes, real exit codes.

Each runs on ape's embedded chain (the default network) unless stated. The
audit script needs a node that outlives one process: those tests start their
own anvil on 127.0.0.1 and point ape-foundry at it (APE_FOUNDRY_HOST).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perpclear.bench import anvil_node
from perpclear.deployment import labelled_key

ROOT = Path(__file__).resolve().parents[2]
APE = [str(Path(sys.executable).with_name("ape")), "run"]
FOUNDRY = ["--network", "ethereum:local:foundry"]


def ape_run(*args, env=None, cwd=ROOT, timeout=600):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*APE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout)


def report_dir(stdout: str) -> Path:
    line = next(l for l in stdout.splitlines() if l.startswith("report: "))
    return Path(line.removeprefix("report: ")).parent


def test_demo_tells_the_story_and_writes_the_report(tmp_path):
    p = ape_run("demo", "--traders", "30", "--reports", str(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    for text in ("The cascade, block by block", "Liquidated:", "The insurance vault paid", "Who paid what under EQUITY", "all hold"):
        assert text in out, out
    folder = report_dir(out)
    assert folder.parent == tmp_path and folder.name.endswith("-flash-crash")
    assert {f.name for f in folder.iterdir()} == {"report.json", "charges.csv", "report.html", "deployment.json"}


NETWORKS = pytest.mark.parametrize("network", [[], FOUNDRY], ids=["embedded", "anvil"])


@NETWORKS
def test_cascade_json_and_exit_code(tmp_path, network):
    p = ape_run("cascade", "gap-30", "--traders", "15", "--policy", "OPEN_INTEREST", "--json", "--reports", str(tmp_path), *network)
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(p.stdout)  # stdout is the JSON document only
    assert data["result"]["policy"] == "OPEN_INTEREST" and data["result"]["backend"].startswith("ethereum:local:")
    assert (Path(data["report"]) / "report.html").is_file()


# make test: on anvil (the other scripts cover the embedded network); .ci/run: both.
@pytest.mark.parametrize("network", [pytest.param([], marks=pytest.mark.ci_scale), FOUNDRY], ids=["embedded", "anvil"])
def test_compare_shows_the_policies_side_by_side(tmp_path, network):
    p = ape_run("compare", "gap-30", "--traders", "15", "--reports", str(tmp_path), *network)
    assert p.returncode == 0, p.stderr[-2000:]
    for text in ("EQUITY", "OPEN_INTEREST", "ADL", "PROFIT", "total charged", "accounts charged", "largest single charge", "insurance used", "fairness"):
        assert text in p.stdout
    doc = json.loads((report_dir(p.stdout) / "report.json").read_text())
    assert [c["policy"] for c in doc["comparison"]] == ["EQUITY", "OPEN_INTEREST", "ADL", "PROFIT"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("cascade", "nope"), "error: nope: no such scenario file"),
        (("cascade", "gap-30", "--traders", "0"), "Invalid value for '--traders'"),
        (("compare", "gap-30", "--seed", "-1"), "Invalid value for '--seed'"),
        (("audit", "--deployment", "missing.json"), "error: missing.json: no such deployment manifest"),
        (("deploy", "--scenario", "nope"), "error: nope: no such scenario file"),
    ],
)
def test_bad_arguments_get_one_line(args, message):
    p = ape_run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in p.stderr and "Traceback" not in p.stderr


def test_deploy_on_the_embedded_chain(tmp_path):
    p = ape_run("deploy", "--scenario", "contagion", "--policy", "OPEN_INTEREST", "--timelock-delay", "3600",
                "--keeper", "TEST::2", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    (manifest,) = tmp_path.glob("*.json")
    data = json.loads(manifest.read_text())
    assert manifest.name == "local-test.json" and data["policy"] == "OPEN_INTEREST" and len(data["markets"]) == 2
    assert data["timelock_delay"] == 3_600 and "timelock: 3600 s" in p.stdout
    # On a devnet a role may be named (here ape's third test account) and the rest keep their derived keys.
    assert data["roles"]["keeper"] == data["roles"]["liquidator"] == "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    assert data["roles"]["admin"] == labelled_key("admin").address and data["roles"]["pending_owner"] is None
    assert data["eip712"]["domain"]["verifyingContract"] == data["contracts"]["order_book"]["address"]
    assert data["eip712"]["primaryType"] == "Order" and data["eip712"]["domain"]["chainId"] == data["chain_id"]


def test_deploy_refuses_a_timelock_beyond_30_days(tmp_path):
    p = ape_run("deploy", "--timelock-delay", str(30 * 86_400 + 1), "--out", str(tmp_path))
    assert p.returncode == 2 and "error: --timelock-delay" in p.stderr and "Traceback" not in p.stderr
    assert not list(tmp_path.glob("*.json"))


def test_help_has_an_example():
    for script in ("deploy", "demo", "cascade", "compare", "audit"):
        p = ape_run(script, "--help")
        assert p.returncode == 0 and "Example: ape run" in p.stdout, (script, p.stdout)


def test_deploy_then_audit_on_one_anvil(tmp_path):
    """deploy writes a manifest, refuses to overwrite a live one, cascade + audit pass on the same node."""
    with anvil_node() as w3:
        env = {"APE_FOUNDRY_HOST": w3.provider.endpoint_uri}
        out = tmp_path / "deployments"
        p = ape_run("deploy", "--out", str(out), *FOUNDRY, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        (manifest,) = out.glob("*.json")
        data = json.loads(manifest.read_text())
        assert set(data["contracts"]) == {"token", "oracle", "vault", "clearing_house", "order_book", "deleverager",
                                          "profit_policy", "lens", "keeper", "timelock"}
        assert data["timelock_delay"] == 0  # a local devnet: governance acts at once
        assert data["policy"] == "EQUITY" and data["chain_id"] == w3.eth.chain_id
        assert all(c["abi"] for c in data["contracts"].values())
        again = ape_run("deploy", "--out", str(out), *FOUNDRY, env=env)
        assert again.returncode == 2 and "pass --force to overwrite it" in again.stderr
        forced = ape_run("deploy", "--out", str(out), "--force", *FOUNDRY, env=env)
        assert forced.returncode == 0, forced.stderr[-2000:]

        p = ape_run("cascade", "flash-crash", "--traders", "20", "--reports", str(tmp_path / "r"), *FOUNDRY, env=env)
        assert p.returncode == 0, p.stderr[-2000:]
        deployment = report_dir(p.stdout) / "deployment.json"
        audit = ape_run("audit", "--deployment", str(deployment), "--json", *FOUNDRY, env=env)
        assert audit.returncode == 0, audit.stdout + audit.stderr[-2000:]
        verdict = json.loads(audit.stdout)
        assert verdict["ok"] and {r["guarantee"] for r in verdict["verdict"]} >= {"waterfall", "socialization", "conservation"}
        assert all(r["result"] == "ok" for r in verdict["verdict"])


def test_deploy_refuses_a_node_address_where_nothing_listens(tmp_path):
    """Seen before: APE_FOUNDRY_HOST at a port where nothing listens made
    ape-foundry start a throwaway anvil there; deploy printed success and wrote
    a manifest of contracts that vanished with it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = ape_run("deploy", "--out", str(tmp_path), *FOUNDRY, env={"APE_FOUNDRY_HOST": f"http://127.0.0.1:{port}"})
    assert p.returncode == 4, (p.stdout, p.stderr)
    assert f"error: nothing listens at http://127.0.0.1:{port}" in p.stderr and "Traceback" not in p.stderr
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("command", ["script", "cli"])
def test_a_node_that_dies_mid_cascade_gets_one_line(tmp_path, command):
    """Seen before: anvil stopped 20 s into a cascade gave a 134-line traceback
    (ConnectionResetError) and exit 1. Now: one line naming the node and the
    block reached, exit 4, and no report written."""
    import shutil
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = subprocess.Popen([shutil.which("anvil"), "--host", "127.0.0.1", "--port", str(port), "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        uri = f"http://127.0.0.1:{port}"
        env = {**os.environ, "APE_FOUNDRY_HOST": uri}
        if command == "script":
            args = [*APE, "cascade", "gap-30", "--traders", "2000", "--reports", str(tmp_path), *FOUNDRY]
        else:
            args = [sys.executable, "-m", "perpclear.cli", "run", "gap-30", "--traders", "2000",
                    "--network", "ethereum:local:foundry", "--out", str(tmp_path / "r.json")]
        run = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Kill the node once the run is under way (deployed, funding 2,000 traders).
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(uri))
        deadline = time.monotonic() + 120
        while w3.eth.block_number < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.poll() is None and w3.eth.block_number >= 20, run.communicate()
        node.kill()
        node.wait(timeout=10)
        out, err = run.communicate(timeout=300)
    finally:
        node.kill()
    assert run.returncode == 4, (out[-1000:], err[-3000:])
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert f"error: the node at {uri} stopped answering after block" in lines[0] and "nothing was written" in lines[0]
    assert not list(tmp_path.iterdir())
