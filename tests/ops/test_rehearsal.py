"""A deployment to a shared chain, rehearsed on an anvil that calls itself
Sepolia (chain id 11155111, a base fee like a real chain).

The refusals come first: no roles named, ape's test accounts, a key of the dev
mnemonic, a key derived from a public label. Then a team deploys with its own
keys: an ape keyfile account (its passphrase from the environment, as a CI
would give it) deploys and proposes ownership to a Safe, the keeper and the
matcher are named by address. A short cascade is played on that deployment
with those keys, and ``ape run audit`` passes on it.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from perpclear.cascade import Cascade
from perpclear.deployment import Deployment, Roles, labelled_key
from perpclear.engine import ChainEngine
from perpclear.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
APE = [str(Path(sys.executable).with_name("ape")), "run"]
FOUNDRY = ["--network", "ethereum:local:foundry"]
SEPOLIA = 11_155_111
DEV_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # the dev mnemonic's first account
DEV_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PASSPHRASE = "rehearsal passphrase"

# The team's keys: fresh here, unknown to anyone else in real life.
ADMIN, KEEPER, MATCHER = (Account.from_key(bytes([i]) * 32) for i in (0x11, 0x22, 0x33))
SAFE = "0x5afe00000000000000000000000000000000cafe"


@pytest.fixture(scope="module")
def sepolia(tmp_path_factory):
    """An anvil with Sepolia's chain id on 127.0.0.1, the env pointing ape at it,
    and an ape data folder holding the admin's keyfile account."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = subprocess.Popen([shutil.which("anvil"), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(SEPOLIA),
                             "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": 60}))
    try:
        for _ in range(200):
            if w3.is_connected():
                break
            time.sleep(0.05)
        assert w3.eth.chain_id == SEPOLIA and w3.eth.get_block("latest")["baseFeePerGas"] > 0
        for account in (ADMIN, KEEPER, MATCHER):  # a faucet gave the team gas
            w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])
        data = tmp_path_factory.mktemp("ape-data")
        (data / "accounts").mkdir()
        keyfile = Account.encrypt(ADMIN.key, PASSPHRASE)
        (data / "accounts" / "team_admin.json").write_text(json.dumps(keyfile))
        env = {"APE_FOUNDRY_HOST": uri, "APE_DATA_FOLDER": str(data), "APE_ACCOUNTS_team_admin_PASSPHRASE": PASSPHRASE}
        yield w3, env
    finally:
        node.kill()
        node.wait(timeout=10)


def deploy(env, out, *roles):
    return subprocess.run([*APE, "deploy", "--out", str(out), *roles, *FOUNDRY], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=600)


def one_line(p, code: int) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
    assert p.returncode == code and len(lines) == 1 and "Traceback" not in p.stderr, (p.returncode, p.stdout[-1000:], p.stderr[-3000:])
    return lines[0]


TEAM = ["--admin", "team_admin", "--keeper", KEEPER.address, "--matcher", MATCHER.address]


@pytest.mark.parametrize(
    "roles, message",
    [
        ([], "this chain is not a local devnet and the default role keys are public: name --admin, --keeper, --matcher"),
        (["--admin", "team_admin", "--keeper", KEEPER.address], "name --matcher"),
        (["--admin", "TEST::1", "--keeper", KEEPER.address, "--matcher", MATCHER.address], "--admin TEST::1: ape's test accounts"),
        (["--admin", "team_admin", "--keeper", DEV_0, "--matcher", MATCHER.address], "a key of the standard dev mnemonic"),
        (["--admin", "team_admin", "--keeper", KEEPER.address, "--matcher", labelled_key("matcher").address],
         'a key derived from "perpclear:matcher"'),
        (["--admin", "nobody", "--keeper", KEEPER.address, "--matcher", MATCHER.address],
         "--admin nobody: neither an address nor an ape account alias"),
        (["--admin", ADMIN.address, "--keeper", KEEPER.address, "--matcher", MATCHER.address], "the admin deploys and so must sign"),
    ],
    ids=["no-roles", "one-missing", "test-account", "dev-key", "derived-key", "unknown-alias", "admin-address"],
)
def test_shared_chain_refuses_public_keys(sepolia, tmp_path, roles, message):
    w3, env = sepolia
    block = w3.eth.block_number
    line = one_line(deploy(env, tmp_path, *roles), 2)
    assert line.startswith("error: ") and message in line, line
    assert not list(tmp_path.iterdir()) and w3.eth.block_number == block  # nothing sent, nothing written


def test_rehearsal_deploy_with_the_teams_keys_play_and_audit(sepolia, tmp_path):
    w3, env = sepolia
    out = tmp_path / "deployments"
    # A crash rehearsal lifts the keeper's bound on marks (off devnets it is
    # 10 % per 5 minutes unless given: checked at the end).
    p = deploy(env, out, *TEAM, "--owner", SAFE, "--max-move-bps", "0")
    assert p.returncode == 0, p.stderr[-3000:]
    (path,) = out.glob("*.json")
    manifest = json.loads(path.read_text())
    assert manifest["chain_id"] == SEPOLIA
    assert manifest["timelock_delay"] == 2 * 86_400 and "timelock: 172800 s" in p.stdout  # off devnets: two days
    assert manifest["roles"] == {"admin": ADMIN.address, "keeper": KEEPER.address, "liquidator": KEEPER.address,
                                 "matcher": MATCHER.address, "pending_owner": Web3.to_checksum_address(SAFE)}
    assert f"ownership proposed to {Web3.to_checksum_address(SAFE)}" in p.stdout

    # On chain: the admin deployed and paid its own gas; the dev account sent nothing.
    engine = ChainEngine(w3, Account.from_key(DEV_0_KEY), "sepolia-rehearsal")
    roles = Roles(admin=ADMIN, keeper=KEEPER, matcher=MATCHER, liquidator=KEEPER)
    d = Deployment.attach(engine, manifest, roles)
    assert w3.eth.get_transaction_count(DEV_0) == 0 and w3.eth.get_transaction_count(ADMIN.address) > 10
    for contract in (d.clearing_house, d.order_book, d.oracle, d.vault):
        assert Web3.to_checksum_address(engine.call(contract, "owner")) == ADMIN.address
        assert Web3.to_checksum_address(engine.call(contract, "pending_owner")) == Web3.to_checksum_address(SAFE)
    assert engine.call(d.oracle, "keepers", KEEPER.address) and engine.call(d.clearing_house, "is_keeper", KEEPER.address)
    assert engine.call(d.order_book, "is_matcher", MATCHER.address)
    assert not engine.call(d.order_book, "is_matcher", labelled_key("matcher").address)
    assert engine.call(d.oracle, "max_age", 0) == manifest["oracle"]["max_age"] == 3_600  # real staleness, not a cascade's

    # A cascade is refused on this chain (its traders' keys are public) ...
    refused = subprocess.run([*APE, "cascade", "flash-crash", "--traders", "5", "--reports", str(tmp_path / "r"), *FOUNDRY],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=600)
    assert "is not a local devnet: cascades sign with public keys" in one_line(refused, 2)
    cli = subprocess.run([sys.executable, "-m", "perpclear.cli", "run", "flash-crash", "--traders", "5", "--network",
                          "ethereum:local:foundry", "--out", str(tmp_path / "run.json")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=600)
    assert "is not a local devnet: cascades sign with public keys" in one_line(cli, 2)
    assert not (tmp_path / "r").exists() and not (tmp_path / "run.json").exists()

    # ... but the team can play one on its deployment, signing with its own keys.
    sc = load_scenario(manifest["scenario"])
    sc = sc.with_overrides(traders={**sc.traders.model_dump(), "count": 12})
    result = Cascade(sc, engine, deployment=d).run()
    assert result.ok, result.invariants
    assert result.liquidations and result.bankruptcies  # the crash bit

    audit = subprocess.run([*APE, "audit", "--deployment", str(path), "--json", *FOUNDRY], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, **env}, timeout=600)
    assert audit.returncode == 0, audit.stdout + audit.stderr[-2000:]
    verdict = json.loads(audit.stdout)
    assert verdict["ok"] and verdict["events"] > 50
    assert all(r["result"] == "ok" and r["checked"] > 0 for r in verdict["verdict"] if r["guarantee"] in ("waterfall", "conservation"))

    # Deployed with the defaults, the keeper's marks are bounded.
    bounded = deploy(env, tmp_path / "bounded", *TEAM)
    assert bounded.returncode == 0, bounded.stderr[-3000:]
    (path,) = (tmp_path / "bounded").glob("*.json")
    oracle = json.loads(path.read_text())["oracle"]
    assert oracle == {"max_age": 3_600, "max_move_bps": 1_000, "move_window": 300}
    assert "a keeper moves them at most 10 % per 300 s" in bounded.stdout
    address = json.loads(path.read_text())["contracts"]["oracle"]["address"]
    assert engine.call(engine.attach("PriceOracle", address), "max_move_bps", 0) == 1_000
    assert engine.call(address, "move_window", 0) == 300
