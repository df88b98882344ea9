"""The compiled contracts in process on titanoboa (py-evm)."""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterable

from eth_account.signers.local import LocalAccount

from perpclear.engine.base import Artifact, Engine, EngineError, Tx, to_checksum_address


class BoaEngine(Engine):
    """The compiled contracts in process on titanoboa (py-evm), one ``boa.Env`` per engine."""

    name = "boa"

    def __init__(self) -> None:
        super().__init__()
        import boa

        self._boa = boa
        self.env = boa.Env()
        self.contracts: dict[str, Any] = {}
        self.last_computation = None  # titanoboa's record of the last transaction sent (gas used, refund)

    def _deploy(self, art: Artifact, args: tuple, sender: LocalAccount) -> str:
        with self._boa.swap_env(self.env), self.env.prank(sender.address):
            c = art.deployer.deploy(*args)
        self.contracts[to_checksum_address(str(c.address))] = c
        return str(c.address)

    def _send(self, txs: list[Tx]) -> list[list[tuple[str, list[bytes], bytes]]]:
        out = []
        with self._boa.swap_env(self.env):
            for tx in txs:
                c = self.contracts[tx.contract]
                try:
                    with self.env.prank(tx.sender.address):
                        getattr(c, tx.fn)(*tx.args)
                except Exception as exc:  # boa raises BoaError with the revert reason
                    raise EngineError(f"{self.describe(tx)} reverted: {_boa_reason(exc)}") from None
                finally:
                    # A transaction ends here: EIP-1153 storage does not outlive it
                    # (boa keeps it across calls unless told).
                    self.env.evm.vm.state.clear_transient_storage()
                self.last_computation = c._computation
                entries = c._computation.get_raw_log_entries()
                out.append(
                    [
                        (
                            "0x" + bytes(addr).hex(),
                            [t.to_bytes(32, "big") for t in topics],
                            bytes(data),
                        )
                        for _, addr, topics, data in sorted(entries, key=lambda e: e[0])
                    ]
                )
        return out

    def _call(self, address: str, data: bytes) -> bytes:
        with self._boa.swap_env(self.env):
            comp = self.env.execute_code(to_address=address, data=data, gas=10**8, is_modifying=False)
        if comp.is_error:
            raise EngineError(f"call to {self.kinds[address].name} reverted")
        return bytes(comp.output)

    def _timestamp(self) -> int:
        return self.env.evm.patch.timestamp

    def code(self, address: str) -> bytes:
        return bytes(self.env.get_code(address))

    def fund_gas(self, accounts: Iterable[LocalAccount]) -> None:
        """Nothing to do: no gas price."""

    def chain_id(self) -> int:
        return self.env.evm.patch.chain_id

    def advance(self, seconds: int) -> None:
        """Moves the clock forward (and the block number, one per 12 s)."""
        self.env.time_travel(seconds=seconds)

    @contextlib.contextmanager
    def _snapshot(self):
        with self._boa.swap_env(self.env), self.env.anchor():
            yield


def _boa_reason(exc: Exception) -> str:
    """The contract's prefixed revert reason inside a titanoboa error, else its first line."""
    text = str(exc)
    found = re.search(r"((?:clearing|book|vault|oracle|orders|token|ownership|lens|adl): [^'\"\n>]*)", text)
    if found:
        return found.group(1)
    return text.splitlines()[0] if text else type(exc).__name__
