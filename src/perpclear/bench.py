"""Cascade benchmark: how fast the runner plays a flash crash, per engine.

    python -m perpclear.bench [--anvil 1000] [--revm 10000] [--boa 1000] [--sweep 40]   (make bench)

For each engine it runs the bundled ``flash-crash`` scenario with N traders
(impact depth and keeper capacity scaled with N, so the crash keeps its shape),
then replays the very same transactions, from the same fresh state, with the
engine's raw API and no runner: signed raw transactions over web3 for anvil,
``execute_code`` for titanoboa, ``message_call`` for revm. The ratio of the two
times is the runner's overhead (its views, event decoding and bookkeeping).
Last, the sweep's throughput: cascades per second of a 100-trader flash
crash on one worker process and on two.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import time

from eth_account import Account

from perpclear.cascade import run_cascade
from perpclear.engine import CONTRACTS_DIR, SOURCES, BoaEngine, ChainEngine, Engine, RevmEngine, artifact
from perpclear.scenario import Scenario, load_scenario

BASE_TRADERS = 200  # the bundled flash-crash's size


def scaled(n: int) -> Scenario:
    sc = load_scenario("flash-crash")
    k = n / BASE_TRADERS
    market = sc.markets[0].model_dump()
    market["impact_depth"] = market["impact_depth"] * k
    keeper = sc.keeper.model_dump()
    keeper["liquidations_per_block"] = max(1, round(keeper["liquidations_per_block"] * k))
    keeper["gas_budget"] = max(keeper["gas_budget"], keeper["liquidations_per_block"] * keeper["gas_per_liquidation"])
    traders = {**sc.traders.model_dump(), "count": n}
    return sc.with_overrides(markets=[market], keeper=keeper, traders=traders)


# The first dev account of anvil's default mnemonic ("test test ... junk").
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@contextlib.contextmanager
def anvil_node():
    """A fresh anvil on 127.0.0.1 (a free port, no base fee) and a web3 connected to it.

    Started here rather than through ape-foundry, which always passes
    ``--steps-tracing`` (a trace of every opcode of every transaction kept in
    memory): on a cascade of thousands of transactions that makes anvil
    several times slower. Point ape at a node you started the same way with
    APE_FOUNDRY_HOST to get the same speed from ``perpclear run --network``.
    """
    from web3 import Web3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("anvil")
    if binary is None:
        raise SystemExit("error: anvil is not on PATH (make setup installs it under node_modules)")
    proc = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port), "--base-fee", "0", "--gas-price", "0", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))
        for _ in range(200):
            if w3.is_connected():
                break
            time.sleep(0.05)
        else:
            raise SystemExit("error: anvil did not start")
        yield w3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replay_revm(journal: list) -> float:
    import pyrevm

    evm = pyrevm.EVM()
    t = time.perf_counter()
    for sender, to, data in (tx for batch in journal for tx in batch):
        if to is None:
            evm.deploy(sender.address, data, gas=12_000_000)
        else:
            evm.message_call(sender.address, to, data, gas=3_000_000)
    return time.perf_counter() - t


def replay_boa(journal: list) -> float:
    import boa

    env = boa.Env()
    t = time.perf_counter()
    with boa.swap_env(env):
        for sender, to, data in (tx for batch in journal for tx in batch):
            if to is None:
                env.deploy_code(sender=sender.address, bytecode=data, gas=12_000_000)
            else:
                env.execute_code(to_address=to, sender=sender.address, data=data, gas=3_000_000)
    return time.perf_counter() - t


def replay_web3(w3, journal: list, chain_id: int) -> float:
    """Signs and sends every batch raw with web3.py, mines it, checks every receipt."""
    t = time.perf_counter()
    nonces: dict[str, int] = {}
    for batch in journal:
        w3.provider.make_request("evm_setAutomine", [False])
        hashes = []
        for sender, to, data in batch:
            a = sender.address
            if a not in nonces:
                nonces[a] = w3.eth.get_transaction_count(a)
            tx = {"chainId": chain_id, "nonce": nonces[a], "gas": 12_000_000 if to is None else 3_000_000, "data": data,
                  "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "type": 2, "value": 0}
            if to is not None:
                tx["to"] = to
            nonces[a] += 1
            hashes.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
        while w3.eth.get_block("pending")["transactions"]:
            w3.provider.make_request("evm_mine", [])
        w3.provider.make_request("evm_setAutomine", [True])
        for h in hashes:
            assert w3.eth.get_transaction_receipt(h)["status"] == 1
    return time.perf_counter() - t


def measure(label: str, engine: Engine, n: int, replay) -> dict:
    sc = scaled(n)
    engine.journal = []
    t = time.perf_counter()
    result = run_cascade(sc, engine)
    runner = time.perf_counter() - t
    raw = replay(engine.journal)
    return {
        "engine": label,
        "traders": n,
        "transactions": result.transactions,
        "liquidations": len(result.liquidations),
        "bankruptcies": len(result.bankruptcies),
        "runner_s": runner,
        "raw_s": raw,
        "ok": result.ok,
    }


def sweep_rates(traders: int, runs: int) -> list[dict]:
    """Cascades per second of ``perpclear sweep`` (flash crash, ``traders``
    traders, one policy and vault, ``runs`` seeds) on 1 and on 2 worker
    processes, start-up included; the two give the same runs."""
    import tempfile
    from pathlib import Path

    from perpclear.sweep import Plan, run_sweep

    sc = scaled(traders)
    plan = Plan(sc, tuple(range(1, runs + 1)), (0.0,), ("EQUITY",))
    rows, answers = [], []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            answers.append(run_sweep(plan, Path(out), workers=workers))
            rows.append({"workers": workers, "runs": runs, "seconds": time.perf_counter() - t})
    assert answers[0] == answers[1], "the sweep's runs differ between 1 and 2 workers"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="example: python -m perpclear.bench --anvil 0 --revm 2000 --boa 0")
    parser.add_argument("--anvil", type=int, default=1_000, help="traders on anvil (0: skip)")
    parser.add_argument("--revm", type=int, default=10_000, help="traders on revm (0: skip)")
    parser.add_argument("--boa", type=int, default=1_000, help="traders on titanoboa (0: skip)")
    parser.add_argument("--sweep", type=int, default=40, help="seeds of a 100-trader sweep on 1 and 2 workers (0: skip)")
    args = parser.parse_args(argv)
    if min(args.anvil, args.revm, args.boa, args.sweep) < 0:
        parser.error("counts must be >= 0")
    for name in SOURCES:  # compile once, outside the timings
        artifact(name)
    rows = []
    if args.revm:
        rows.append(measure("revm", RevmEngine(), args.revm, replay_revm))
    if args.boa:
        rows.append(measure("titanoboa", BoaEngine(), args.boa, replay_boa))
    if args.anvil:
        def replay(journal):
            with anvil_node() as fresh:  # the same transactions on a node in the same initial state
                return replay_web3(fresh, journal, fresh.eth.chain_id)

        with anvil_node() as w3:
            rows.append(measure("anvil", ChainEngine(w3, Account.from_key(ANVIL_KEY), "anvil"), args.anvil, replay))
    print(f"flash-crash cascade (contracts in {CONTRACTS_DIR.name}/), runner vs the same transactions sent raw")
    print(f"{'engine':10s} {'traders':>8s} {'txs':>7s} {'liq.':>6s} {'bankr.':>6s} {'runner s':>9s} {'tx/s':>7s} {'raw s':>7s} {'overhead':>8s}  invariants")
    for r in rows:
        print(
            f"{r['engine']:10s} {r['traders']:8d} {r['transactions']:7d} {r['liquidations']:6d} {r['bankruptcies']:6d} "
            f"{r['runner_s']:9.1f} {r['transactions'] / r['runner_s']:7.0f} {r['raw_s']:7.1f} {r['runner_s'] / r['raw_s']:7.2f}x  "
            f"{'ok' if r['ok'] else 'FAILED'}"
        )
    if args.sweep:
        one, two = sweep_rates(100, args.sweep)
        print(f"perpclear sweep, flash crash with 100 traders, {args.sweep} seeds (revm, start-up included)")
        for r in (one, two):
            print(f"  {r['workers']} worker{'s' if r['workers'] > 1 else ' '}: {r['seconds']:6.1f} s  "
                  f"{r['runs'] / r['seconds']:5.2f} cascades/s")
        print(f"  speed-up 1 -> 2 workers: {one['seconds'] / two['seconds']:.2f}x (same runs)")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
