"""The compiler cross-check: the deployed clearing house (Vyper's experimental
Venom pipeline, `optimize codesize`: it fits EIP-170) against the same source
built by the legacy pipeline (`optimize gas`, which does not fit: its EVM here
lifts the size limit).

Every transaction and every view of the stateful fuzzing (all three starting
policies, both decimals) and of every bundled cascade runs on both builds at
once (`CrossCheckEngine`); they must agree on each one: success or the revert
reason, the logs (address, topics, data), and the bytes every view returns.
Only gas may differ. The other contracts are built one way and shared.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import pytest

from perpclear.cascade import run_cascade
from perpclear.engine import CONTRACTS_DIR, Artifact, EngineError, RevmEngine, _revert_text
from perpclear.model import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST
from perpclear.scenario import POLICIES, bundled_scenarios, load_scenario

from fuzz.test_cascade_machine import run_machine

VENOM = ("# pragma optimize codesize\n", "# pragma experimental-codegen\n")


@lru_cache(maxsize=1)
def legacy_clearing_house() -> Artifact:
    """ClearingHouse.vy without its pipeline pragmas (legacy codegen, `optimize gas`)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="perpclear-legacy-")) / "contracts"
    shutil.copytree(CONTRACTS_DIR, root)
    source = (root / "ClearingHouse.vy").read_text()
    assert all(p in source for p in VENOM), "the deployed build's pragmas moved: update this test"
    for pragma in VENOM:
        source = source.replace(pragma, "")
    (root / "ClearingHouse.vy").write_text(source)
    return Artifact("ClearingHouse", root / "ClearingHouse.vy")


class CrossCheckEngine(RevmEngine):
    """RevmEngine that replays every deployment, transaction and view on a
    second EVM where the clearing house is the legacy build, and fails on the
    first difference."""

    name = "revm-crosscheck"

    def __init__(self) -> None:
        super().__init__()
        import pyrevm

        self.other = pyrevm.EVM(env=pyrevm.Env(cfg=pyrevm.CfgEnv(limit_contract_code_size=2**17)))
        self.legacy = legacy_clearing_house()

    def _deploy(self, art, args, sender):
        from eth_abi import encode

        address = super()._deploy(art, args, sender)
        bytecode = (self.legacy if art.name == "ClearingHouse" else art).bytecode
        other = self.other.deploy(sender.address, bytecode + encode(art.ctor_types, list(args)), gas=10**8)
        assert other == address, (art.name, other, address)
        return address

    def _outcome(self, evm, sender: str, to: str, data: bytes, static: bool):
        try:
            out = bytes(evm.message_call(sender, to, data, gas=10**8 if static else 3_000_000, is_static=static))
        except RuntimeError as exc:
            return ("revert", _revert_text(str(exc)))
        finally:
            if not static:
                evm.reset_transient_storage()
        logs = [] if static else [(log.address, list(log.data[0]), bytes(log.data[1])) for log in evm.result.logs]
        return ("ok", out, logs)

    def _send(self, txs):
        out = []
        for tx in txs:
            data = self.kinds[tx.contract].encode_call(tx.fn, tx.args)
            mine = self._outcome(self.evm, tx.sender.address, tx.contract, data, False)
            theirs = self._outcome(self.other, tx.sender.address, tx.contract, data, False)
            assert mine == theirs, f"{self.describe(tx)}{tx.args}: Venom {mine} != legacy {theirs}"
            if mine[0] == "revert":
                raise EngineError(f"{self.describe(tx)} reverted: {mine[1]}")
            out.append(mine[2])
        return out

    def _call(self, address, data):
        from perpclear.engine import ZERO_CALLER

        mine = self._outcome(self.evm, ZERO_CALLER, address, data, True)
        theirs = self._outcome(self.other, ZERO_CALLER, address, data, True)
        assert mine == theirs, f"view {self.kinds[address].name} {data[:4].hex()}: Venom {mine} != legacy {theirs}"
        if mine[0] == "revert":
            raise EngineError(f"call to {self.kinds[address].name} reverted: {mine[1]}")
        return mine[1]

    def advance(self, seconds: int) -> None:
        import pyrevm

        super().advance(seconds)
        block = self.evm.env.block
        self.other.set_block_env(pyrevm.BlockEnv(number=block.number, timestamp=block.timestamp))


def test_the_builds_differ_and_only_one_fits():
    from perpclear.engine import artifact

    deployed, legacy = artifact("ClearingHouse"), legacy_clearing_house()
    assert deployed.bytecode != legacy.bytecode and deployed.abi == legacy.abi
    runtime = len(deployed.deployer.compiler_data.bytecode_runtime)
    assert runtime <= 24_576 < len(legacy.deployer.compiler_data.bytecode_runtime)


@pytest.mark.parametrize("policy", [POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_ADL], ids=["equity", "open_interest", "adl"])
@pytest.mark.parametrize("decimals", [6, 18])
def test_fuzz_sequences_agree_on_both_builds(decimals, policy, fuzz_profile):
    run_machine(decimals, policy, fuzz_profile, engine=CrossCheckEngine)


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("scenario", [p.stem for p in bundled_scenarios()])
def test_cascades_agree_on_both_builds(scenario, policy):
    sc = load_scenario(scenario)
    sc = sc.with_overrides(loss_policy=policy, traders={**sc.traders.model_dump(), "count": min(sc.traders.count, 60)})
    assert run_cascade(sc, CrossCheckEngine()).ok
