"""Two ways to run the same compiled contracts: in process or on a node.

``BoaEngine`` (the fast engine) executes the contracts in process with
titanoboa; ``ChainEngine`` sends signed raw transactions to any node that web3
can reach: ape's embedded chain, an anvil devnet, a testnet or a fork (use
``ChainEngine.from_ape()`` inside ``ape run`` / ``ape test``). Both compile the
sources shipped in ``perpclear/contracts`` with the same Vyper, both decode
events with the same ABI decoder, and both expose the same four verbs:

- ``deploy(name, *args, sender=...)`` -> address
- ``send([Tx, ...])`` -> one list of ``Event`` per transaction (a revert raises
  ``EngineError`` naming the call and its reason)
- ``call(contract, fn, *args)`` and ``calls([(contract, fn, args), ...])``

so everything built on top (the cascade runner, the pytest plugin) runs
unchanged on either, and gives identical results.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, keccak, to_checksum_address

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
SOURCES = {
    "MockCollateral": "mocks/MockCollateral.vy",
    "PriceOracle": "PriceOracle.vy",
    "InsuranceVault": "InsuranceVault.vy",
    "ClearingHouse": "ClearingHouse.vy",
    "OrderBook": "OrderBook.vy",
    "Deleverager": "Deleverager.vy",
    "ClearingLens": "ClearingLens.vy",
}
TX_GAS = 3_000_000
BATCH = 500  # calls per JSON-RPC batch
DEPLOY_GAS = 12_000_000


class EngineError(RuntimeError):
    """A transaction reverted or the node refused it."""


class NodeError(EngineError):
    """The node stopped answering (it died, or the connection dropped)."""


@dataclass(frozen=True)
class Tx:
    """One transaction: ``sender`` (an eth-account key) calls ``contract.fn(*args)``."""

    sender: LocalAccount
    contract: str  # address
    fn: str
    args: tuple = ()


@dataclass(frozen=True)
class Event:
    name: str
    address: str
    args: dict = field(hash=False)

    def __getattr__(self, item: str) -> Any:
        try:
            return self.args[item]
        except KeyError:
            raise AttributeError(item) from None


def _canonical(typ: dict) -> str:
    if typ["type"].startswith("tuple"):
        inner = ",".join(_canonical(c) for c in typ["components"])
        return f"({inner}){typ['type'][5:]}"
    return typ["type"]


class Artifact:
    """ABI, bytecode, selectors and event decoders of one compiled contract."""

    def __init__(self, name: str, path: Path | None = None):
        """``path``: another source for contract ``name`` (e.g. another compiler pipeline's build)."""
        import boa  # compiling goes through titanoboa's cached Vyper front end
        from vyper.compiler.output import build_abi_output

        self.name = name
        self.path = path or CONTRACTS_DIR / SOURCES[name]
        self.deployer = boa.load_partial(str(self.path))
        data = self.deployer.compiler_data
        self.bytecode: bytes = data.bytecode
        self.abi: list[dict] = build_abi_output(data)
        self.functions = {f["name"]: f for f in self.abi if f["type"] == "function"}
        self.events = {}
        for e in self.abi:
            if e["type"] == "event":
                sig = f"{e['name']}({','.join(_canonical(i) for i in e['inputs'])})"
                self.events[keccak(text=sig)] = e
        ctor = next((f for f in self.abi if f["type"] == "constructor"), {"inputs": []})
        self.ctor_types = [_canonical(i) for i in ctor["inputs"]]

    def encode_call(self, fn: str, args: tuple) -> bytes:
        f = self.functions[fn]
        return function_abi_to_4byte_selector(f) + abi_encode([_canonical(i) for i in f["inputs"]], list(args))

    def decode_output(self, fn: str, raw: bytes) -> Any:
        outs = [_canonical(o) for o in self.functions[fn]["outputs"]]
        values = abi_decode(outs, raw)
        return values[0] if len(values) == 1 else tuple(values)

    def decode_event(self, address: str, topics: list[bytes], data: bytes) -> Event | None:
        abi = self.events.get(topics[0])
        if abi is None:
            return None
        indexed = [i for i in abi["inputs"] if i["indexed"]]
        plain = [i for i in abi["inputs"] if not i["indexed"]]
        values = dict(zip((i["name"] for i in plain), abi_decode([_canonical(i) for i in plain], data)))
        for inp, topic in zip(indexed, topics[1:]):
            values[inp["name"]] = abi_decode([_canonical(inp)], topic)[0]
        args = {i["name"]: _normalize(values[i["name"]]) for i in abi["inputs"]}
        return Event(abi["name"], to_checksum_address(address), args)


def _normalize(v: Any) -> Any:
    if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
        return to_checksum_address(v)
    if isinstance(v, tuple):
        return tuple(_normalize(x) for x in v)
    return v


@functools.lru_cache(maxsize=None)
def artifact(name: str) -> Artifact:
    return Artifact(name)


class Engine:
    """What the runner needs from a backend; see the module docstring."""

    name = "engine"

    def __init__(self) -> None:
        self.kinds: dict[str, Artifact] = {}  # address -> artifact
        self.tx_count = 0
        # When a list: one entry per deployment or ``send``, each a list of
        # (sender, to or None, calldata), for replaying them without the runner (perpclear.bench).
        self.journal: list | None = None

    # -- to implement
    def _deploy(self, art: Artifact, args: tuple, sender: LocalAccount) -> str: ...
    def _send(self, txs: list[Tx]) -> list[list[tuple[str, list[bytes], bytes]]]: ...
    def _call(self, address: str, data: bytes) -> bytes: ...
    def fund_gas(self, accounts: Iterable[LocalAccount]) -> None: ...
    def chain_id(self) -> int: ...

    # -- shared
    def deploy(self, name: str, *args: Any, sender: LocalAccount) -> str:
        art = artifact(name)
        if self.journal is not None:
            self.journal.append([(sender, None, art.bytecode + abi_encode(art.ctor_types, list(args)))])
        address = to_checksum_address(self._deploy(art, args, sender))
        self.kinds[address] = art
        return address

    def attach(self, name: str, address: str) -> str:
        """Registers a contract deployed before (e.g. from a manifest) under its artifact."""
        address = to_checksum_address(address)
        self.kinds[address] = artifact(name)
        return address

    def _decode(self, raw_logs) -> list[Event]:
        events = []
        for address, topics, data in raw_logs:
            art = self.kinds.get(to_checksum_address(address))
            if art is not None:
                ev = art.decode_event(address, topics, data)
                if ev is not None:
                    events.append(ev)
        return events

    def send(self, txs: list[Tx]) -> list[list[Event]]:
        if not txs:
            return []
        self.tx_count += len(txs)
        if self.journal is not None:
            self.journal.append([(tx.sender, tx.contract, self.kinds[tx.contract].encode_call(tx.fn, tx.args)) for tx in txs])
        return [self._decode(raw) for raw in self._send(txs)]

    def call(self, contract: str, fn: str, *args: Any) -> Any:
        art = self.kinds[contract]
        return art.decode_output(fn, self._call(contract, art.encode_call(fn, args)))

    def calls(self, requests: list[tuple[str, str, tuple]]) -> list[Any]:
        return [self.call(c, fn, *args) for c, fn, args in requests]

    def describe(self, tx: Tx) -> str:
        art = self.kinds.get(tx.contract)
        return f"{art.name if art else tx.contract}.{tx.fn}"


class BoaEngine(Engine):
    """The compiled contracts in process on titanoboa (py-evm), one ``boa.Env`` per engine."""

    name = "boa"

    def __init__(self) -> None:
        super().__init__()
        import boa

        self._boa = boa
        self.env = boa.Env()
        self.contracts: dict[str, Any] = {}

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

    def fund_gas(self, accounts: Iterable[LocalAccount]) -> None:
        """Nothing to do: the fast engine charges no gas price."""

    def chain_id(self) -> int:
        return self.env.evm.patch.chain_id


class RevmEngine(Engine):
    """The same bytecode on revm (PyPI ``pyrevm``), a Rust EVM: the fastest engine here.

    titanoboa interprets the EVM in Python (py-evm); revm runs the same
    compiled contracts natively, ~10x faster on a cascade. Results are
    identical (a test runs every bundled scenario on both).
    """

    name = "revm"

    def __init__(self) -> None:
        super().__init__()
        import pyrevm

        self.evm = pyrevm.EVM()

    def _deploy(self, art: Artifact, args: tuple, sender: LocalAccount) -> str:
        return self.evm.deploy(sender.address, art.bytecode + abi_encode(art.ctor_types, list(args)), gas=DEPLOY_GAS)

    def _send(self, txs: list[Tx]) -> list[list[tuple[str, list[bytes], bytes]]]:
        out = []
        for tx in txs:
            data = self.kinds[tx.contract].encode_call(tx.fn, tx.args)
            try:
                self.evm.message_call(tx.sender.address, tx.contract, data, gas=TX_GAS)
            except RuntimeError as exc:
                raise EngineError(f"{self.describe(tx)} reverted: {_revert_text(str(exc))}") from None
            finally:
                # A transaction ends here: EIP-1153 storage does not outlive it
                # (pyrevm's message_call keeps it unless told).
                self.evm.reset_transient_storage()
            out.append([(log.address, list(log.data[0]), bytes(log.data[1])) for log in self.evm.result.logs])
        return out

    def _call(self, address: str, data: bytes) -> bytes:
        try:
            return bytes(self.evm.message_call(ZERO_CALLER, address, data, gas=10**8, is_static=True))
        except RuntimeError as exc:
            raise EngineError(f"call to {self.kinds[address].name} reverted: {_revert_text(str(exc))}") from None

    def fund_gas(self, accounts: Iterable[LocalAccount]) -> None:
        """Nothing to do: no gas price."""

    def chain_id(self) -> int:
        return self.evm.env.cfg.chain_id

    def advance(self, seconds: int) -> None:
        """Moves the clock (and the block number) forward."""
        import pyrevm

        block = self.evm.env.block
        self.evm.set_block_env(pyrevm.BlockEnv(number=block.number + 1, timestamp=block.timestamp + seconds))


ZERO_CALLER = "0x" + "00" * 19 + "01"


def as_int(value: Any) -> int:
    """A JSON-RPC quantity: hex text from a node, already an int from eth-tester."""
    return value if isinstance(value, int) else int(value, 16)


def as_bytes(value: Any) -> bytes:
    """JSON-RPC data: hex text from a node, bytes from eth-tester."""
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _revert_text(text: str) -> str:
    """The Error(string) reason inside revm's ``Revert { output: 0x08c379a0... }``."""
    marker = "output: 0x08c379a0"
    if marker in text:
        raw = bytes.fromhex(text.split(marker, 1)[1].split()[0])
        try:
            return abi_decode(["string"], raw)[0]
        except Exception:
            pass
    return text.splitlines()[0]


def _boa_reason(exc: Exception) -> str:
    """The contract's prefixed revert reason inside a titanoboa error, else its first line."""
    text = str(exc)
    found = re.search(r"((?:clearing|book|vault|oracle|orders|token|ownership|lens|adl): [^'\"\n>]*)", text)
    if found:
        return found.group(1)
    return text.splitlines()[0] if text else type(exc).__name__


# Chain ids of local devnets: ape's embedded chain (1337 or eth-tester's
# 131277322940537), anvil and hardhat (31337).
DEVNET_CHAIN_IDS = frozenset({1337, 31337, 131277322940537})


class ChainEngine(Engine):
    """Signed raw transactions over JSON-RPC to any node (ape's embedded chain, anvil, a testnet).

    Transactions of one ``send`` are all submitted first and their receipts
    collected after, so a node that mines every transaction on arrival (anvil,
    the embedded chain) is never waited on per call. Requests go straight to
    the web3 provider (no middleware), views in JSON-RPC batches where the
    provider supports them.
    """

    name = "chain"

    def __init__(self, web3: Any, funder: LocalAccount, label: str = "chain"):
        super().__init__()
        self.w3 = web3
        self.funder = funder
        self.name = label
        self._nonces: dict[str, int] = {}
        self._chain_id = web3.eth.chain_id
        self._batch = False
        self._http = None
        uri = getattr(web3.provider, "endpoint_uri", None)
        if isinstance(uri, str) and uri.startswith("http"):
            import requests

            # A session of our own that skips the proxy lookups of every request.
            self._http = requests.Session()
            self._http.trust_env = False
            self._uri = uri
            self._batch = True
        self._last_block = 0
        self._anvil = str(self._request("web3_clientVersion", []).get("result", "")).lower().startswith("anvil")

    @classmethod
    def from_ape(cls) -> "ChainEngine":
        """The connected ape provider, paying gas from its first test account."""
        from ape import accounts, chain

        provider = chain.provider
        funder = Account.from_key(accounts.test_accounts[0].private_key)
        label = f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.name}"
        return cls(provider.web3, funder, label)

    def chain_id(self) -> int:
        return self._chain_id

    @property
    def devnet(self) -> bool:
        """A local devnet (by chain id): keys derived from public labels are fine here."""
        return self._chain_id in DEVNET_CHAIN_IDS

    def _request(self, method: str, params: list) -> dict:
        if self._http is None:
            # In-process providers (ape's embedded chain): through web3's
            # formatters, which give the node's camelCase field names.
            try:
                return {"result": self.w3.manager.request_blocking(method, params)}
            except Exception as exc:  # a revert or a refused transaction
                return {"error": {"message": str(exc), "data": getattr(exc, "data", None)}}
        return self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})

    def _request_batch(self, batch: list[tuple[str, list]]) -> list[dict]:
        if self._http is None:
            return [self._request(m, p) for m, p in batch]
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(batch)]
        return sorted(self._post(payload), key=lambda r: r["id"])

    def _post(self, payload: Any) -> Any:
        import requests

        try:
            return self._http.post(self._uri, json=payload).json()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise NodeError(f"the node at {self._uri} stopped answering after block {self._last_block} "
                            f"({type(exc).__name__})") from None

    def _rpc(self, method: str, params: list) -> Any:
        response = self._request(method, params)
        if response.get("error"):
            raise EngineError(f"{method}: {response['error'].get('message', response['error'])}")
        return response["result"]

    def _fees(self) -> dict:
        block = self._rpc("eth_getBlockByNumber", ["latest", False])
        self._last_block = as_int(block.get("number", 0) or 0)
        base = as_int(block.get("baseFeePerGas", block.get("base_fee_per_gas", 0)) or 0)  # eth-tester: snake case
        return {"maxFeePerGas": 2 * base, "maxPriorityFeePerGas": 0}

    def _nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = as_int(self._rpc("eth_getTransactionCount", [address, "pending"]))
        n = self._nonces[address]
        self._nonces[address] = n + 1
        return n

    def _submit(self, sender: LocalAccount, to: str | None, data: bytes, gas: int, fees: dict, value: int = 0) -> str:
        tx = {"chainId": self._chain_id, "nonce": self._nonce(sender.address), "gas": gas, "value": value,
              "data": data, "type": 2, **fees}
        if to is not None:
            tx["to"] = to
        raw = sender.sign_transaction(tx).raw_transaction
        try:
            return self._rpc("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        except EngineError as exc:
            self._nonces.pop(sender.address, None)
            raise EngineError(f"node refused a transaction: {exc}") from None

    def _receipt(self, tx_hash: str) -> dict:
        deadline = time.monotonic() + 120
        while True:
            receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise EngineError(f"no receipt for {tx_hash} after 120 s")
            time.sleep(0.001)

    def _receipts(self, hashes: list[str]) -> list[dict]:
        """Every receipt, fetched in batches where the provider allows it."""
        if not self._batch or len(hashes) < 2:
            return [self._receipt(h) for h in hashes]
        found: dict[str, dict] = {}
        deadline = time.monotonic() + 120
        while len(found) < len(hashes):
            missing = [h for h in hashes if h not in found]
            for h, r in zip(missing, self._request_batch([("eth_getTransactionReceipt", [h]) for h in missing])):
                if r.get("result") is not None:
                    found[h] = r["result"]
            if len(found) < len(hashes):
                if time.monotonic() > deadline:
                    raise EngineError(f"{len(hashes) - len(found)} receipts missing after 120 s")
                time.sleep(0.001)
        return [found[h] for h in hashes]

    def _mine_batch(self, submit) -> list[str]:
        """Runs ``submit()`` (which sends transactions) and mines its transactions.

        On anvil, automine is switched off while a batch is submitted and the
        batch is then mined in as few blocks as the gas limit allows: one
        block per transaction makes anvil slower with every block (its cost
        grows with the chain), and a real chain packs many transactions per
        block anyway. Anvil orders a block by sender and nonce; every batch of
        the runner that depends on order has a single sender.
        """
        if not self._anvil:
            return submit()
        self._rpc("evm_setAutomine", [False])
        try:
            hashes = submit()
            while True:
                self._rpc("evm_mine", [])
                if not self._rpc("eth_getBlockByNumber", ["pending", False])["transactions"]:
                    break
        finally:
            self._rpc("evm_setAutomine", [True])
        return hashes

    def _deploy(self, art: Artifact, args: tuple, sender: LocalAccount) -> str:
        data = art.bytecode + abi_encode(art.ctor_types, list(args))
        receipt = self._receipt(self._submit(sender, None, data, DEPLOY_GAS, self._fees()))
        if as_int(receipt["status"]) != 1:
            raise EngineError(f"deploying {art.name} failed")
        return receipt["contractAddress"]

    def _send(self, txs: list[Tx]) -> list[list[tuple[str, list[bytes], bytes]]]:
        fees = self._fees()
        hashes = self._mine_batch(
            lambda: [
                self._submit(tx.sender, tx.contract, self.kinds[tx.contract].encode_call(tx.fn, tx.args), TX_GAS, fees)
                for tx in txs
            ]
        )
        out = []
        for tx, receipt in zip(txs, self._receipts(hashes)):
            if as_int(receipt["status"]) != 1:
                raise EngineError(f"{self.describe(tx)} reverted: {self._revert_reason(tx, receipt)}")
            out.append(
                [(log["address"], [as_bytes(t) for t in log["topics"]], as_bytes(log["data"])) for log in receipt["logs"]]
            )
        return out

    def _revert_reason(self, tx: Tx, receipt: dict) -> str:
        call = {"from": tx.sender.address, "to": tx.contract, "data": "0x" + self.kinds[tx.contract].encode_call(tx.fn, tx.args).hex()}
        response = self._request("eth_call", [call, hex(as_int(receipt["blockNumber"]) - 1)])
        error = response.get("error") or {}
        data = error.get("data")
        if isinstance(data, str) and data.startswith("0x08c379a0"):
            return abi_decode(["string"], bytes.fromhex(data[10:]))[0]
        return error.get("message", "unknown reason")

    def _call_params(self, address: str, data: bytes) -> list:
        return [{"to": address, "data": "0x" + data.hex(), "gas": hex(10**8)}, "latest"]

    def _call(self, address: str, data: bytes) -> bytes:
        try:
            return as_bytes(self._rpc("eth_call", self._call_params(address, data)))
        except EngineError as exc:
            raise EngineError(f"call to {self.kinds[address].name} reverted: {exc}") from None

    def calls(self, requests: list[tuple[str, str, tuple]]) -> list[Any]:
        """JSON-RPC batches of up to ``BATCH`` calls where the provider supports them."""
        if len(requests) < 2 or not self._batch:
            return super().calls(requests)
        if len(requests) > BATCH:
            return [v for i in range(0, len(requests), BATCH) for v in self.calls(requests[i : i + BATCH])]
        batch = [("eth_call", self._call_params(c, self.kinds[c].encode_call(fn, args))) for c, fn, args in requests]
        try:
            responses = self._request_batch(batch)
        except Exception:
            self._batch = False  # e.g. the embedded chain: one request at a time
            return super().calls(requests)
        if not isinstance(responses, list) or any("error" in r for r in responses):
            return super().calls(requests)  # raises with the reason of the failing call
        return [self.kinds[c].decode_output(fn, as_bytes(r["result"])) for (c, fn, _), r in zip(requests, responses)]

    def fund_gas(self, accounts: Iterable[LocalAccount], amount: int = 10**18) -> None:
        """Gives each account ETH for gas, unless the node charges none (anvil with base fee 0)."""
        fees = self._fees()
        if fees["maxFeePerGas"] == 0:
            return
        self._receipts(self._mine_batch(lambda: [self._submit(self.funder, a.address, b"", 21_000, fees, value=amount) for a in accounts]))


# The in-process engines by name (the CLI's --network and the plugin's option).
IN_PROCESS = {"boa": BoaEngine, "revm": RevmEngine}
