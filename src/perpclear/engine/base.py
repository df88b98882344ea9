"""What every engine shares: compiled contracts (``Artifact``), transactions
and events, errors, and the ``Engine`` base class with the verbs (see the package docstring)."""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, keccak

from perpclear.engine.abi import abi_decode, abi_encode, to_checksum_address

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"
SOURCES = {
    "MockCollateral": "mocks/MockCollateral.vy",
    "PriceOracle": "PriceOracle.vy",
    "InsuranceVault": "InsuranceVault.vy",
    "ClearingHouse": "ClearingHouse.vy",
    "OrderBook": "OrderBook.vy",
    "Deleverager": "Deleverager.vy",
    "ProfitPolicy": "ProfitPolicy.vy",
    "EquityPolicy": "EquityPolicy.vy",
    "OpenInterestPolicy": "OpenInterestPolicy.vy",
    "ClearingLens": "ClearingLens.vy",
    "Keeper": "Keeper.vy",
    "Timelock": "Timelock.vy",
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
    gas: int = TX_GAS  # the transaction's gas limit


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


@dataclass(frozen=True)
class Record:
    """One decoded log with where it happened (``Engine.logs``)."""

    event: Event
    block: int
    tx: str  # transaction hash (in process: the transaction's ordinal, as 32 bytes)
    index: int  # log index in its block
    timestamp: int

    @property
    def name(self) -> str:
        return self.event.name

    def where(self) -> str:
        return f"{self.name} (block {self.block}, tx {self.tx[:10]}…, log {self.index})"


def _canonical(typ: dict) -> str:
    if typ["type"].startswith("tuple"):
        inner = ",".join(_canonical(c) for c in typ["components"])
        return f"({inner}){typ['type'][5:]}"
    return typ["type"]


class Artifact:
    """ABI, bytecode, selectors and event decoders of one compiled contract.

    The compiled bytecode and ABI are kept on disk (``cache_dir()``), keyed by
    the Vyper version and the text of every contract source, so a process
    that only runs revm or a node never starts the compiler again for
    unchanged sources (a sweep worker starts in ~0.2 s instead of ~5 s).
    """

    def __init__(self, name: str, path: Path | None = None):
        """``path``: another source for contract ``name`` (e.g. another compiler pipeline's build)."""
        self.name = name
        self.path = path or CONTRACTS_DIR / SOURCES[name]
        build = _cached_build(self)
        self.bytecode: bytes = bytes.fromhex(build["bytecode"])
        self.abi: list[dict] = build["abi"]
        self.functions = {f["name"]: f for f in self.abi if f["type"] == "function"}
        self.events = {}
        for e in self.abi:
            if e["type"] == "event":
                sig = f"{e['name']}({','.join(_canonical(i) for i in e['inputs'])})"
                self.events[keccak(text=sig)] = e
        ctor = next((f for f in self.abi if f["type"] == "constructor"), {"inputs": []})
        self.ctor_types = [_canonical(i) for i in ctor["inputs"]]
        # Worked out once: selector and argument types per function, output types, event layouts.
        self._inputs = {n: (function_abi_to_4byte_selector(f), [_canonical(i) for i in f["inputs"]])
                        for n, f in self.functions.items()}
        self._outputs = {n: [_canonical(o) for o in f["outputs"]] for n, f in self.functions.items()}
        # A view that returns one struct returns it with its field names (e.g. ``health(a).equity``).
        self._structs = {n: collections.namedtuple(n, [c["name"] for c in f["outputs"][0]["components"]])
                         for n, f in self.functions.items()
                         if len(f["outputs"]) == 1 and f["outputs"][0]["type"] == "tuple"}
        self._layouts = {
            topic: (e["name"], [i["name"] for i in e["inputs"]],
                    [i["name"] for i in e["inputs"] if not i["indexed"]],
                    [_canonical(i) for i in e["inputs"] if not i["indexed"]],
                    [(i["name"], _canonical(i)) for i in e["inputs"] if i["indexed"]])
            for topic, e in self.events.items()
        }

    @functools.cached_property
    def deployer(self):
        """titanoboa's deployer of this source (the boa engine deploys through it)."""
        import boa  # compiling goes through titanoboa's cached Vyper front end

        return boa.load_partial(str(self.path))

    def encode_call(self, fn: str, args: tuple) -> bytes:
        selector, types = self._inputs[fn]
        return selector + abi_encode(types, args)

    def decode_output(self, fn: str, raw: bytes) -> Any:
        values = abi_decode(self._outputs[fn], raw)
        if len(values) != 1:
            return tuple(values)
        struct = self._structs.get(fn)
        return struct(*values[0]) if struct else values[0]

    def decode_event(self, address: str, topics: list[bytes], data: bytes) -> Event | None:
        layout = self._layouts.get(topics[0])
        if layout is None:
            return None
        name, order, plain, plain_types, indexed = layout
        values = dict(zip(plain, abi_decode(plain_types, data)))
        for (key, typ), topic in zip(indexed, topics[1:]):
            values[key] = abi_decode([typ], topic)[0]
        return Event(name, to_checksum_address(address), {k: values[k] for k in order})


def cache_dir() -> Path:
    """Where compiled contracts are kept: $PERPCLEAR_CACHE, else ~/.cache/perpclear."""
    return Path(os.environ.get("PERPCLEAR_CACHE") or Path.home() / ".cache" / "perpclear")


def sources_digest() -> str:
    """SHA-256 of every contract source (modules and interfaces too): any change changes it."""
    digest = hashlib.sha256()
    for source in sorted(CONTRACTS_DIR.rglob("*.vy*")):
        digest.update(source.relative_to(CONTRACTS_DIR).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _cached_build(art: Artifact) -> dict:
    """{"bytecode": hex, "abi": [...]} of ``art.path``, compiled once per source text."""
    import vyper

    # The file's own text too: it may live outside the contracts folder (the legacy cross-check build).
    digest = hashlib.sha256(f"{vyper.__version__}\0{art.path.name}\0{sources_digest()}\0".encode() + art.path.read_bytes())
    cached = cache_dir() / f"{art.name}-{digest.hexdigest()[:32]}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    from vyper.compiler.output import build_abi_output

    data = art.deployer.compiler_data
    build = {"bytecode": data.bytecode.hex(), "abi": build_abi_output(data)}
    try:  # written whole or not at all: parallel workers may race here
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(build))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only home: compile each time
    return build


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
        # In process: (transaction ordinal, timestamp, raw logs) of every
        # transaction sent, for ``logs`` (one block per transaction, as a node
        # that mines each on arrival).
        self._book: list[tuple] | None = []

    # -- to implement
    def _deploy(self, art: Artifact, args: tuple, sender: LocalAccount) -> str: ...
    def _send(self, txs: list[Tx]) -> list[list[tuple[str, list[bytes], bytes]]]: ...
    def _call(self, address: str, data: bytes) -> bytes: ...
    def _timestamp(self) -> int: ...
    def code(self, address: str) -> bytes: ...
    def fund_gas(self, accounts: Iterable[LocalAccount]) -> None: ...
    def chain_id(self) -> int: ...
    def advance(self, seconds: int) -> None: ...
    def _snapshot(self) -> contextlib.AbstractContextManager: ...

    # -- shared
    def deploy(self, name: str | Artifact, *args: Any, sender: LocalAccount) -> str:
        """Deploys contract ``name`` (or an ``Artifact`` of another source, e.g. a test's harness)."""
        art = name if isinstance(name, Artifact) else artifact(name)
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

    def send(self, txs: list[Tx], decode: bool = True) -> list[list[Event]]:
        """Runs ``txs`` in order; the events of each (``decode=False``: none,
        for callers that do not read them; ``logs`` still has them)."""
        if not txs:
            return []
        if self.journal is not None:
            self.journal.append([(tx.sender, tx.contract, self.kinds[tx.contract].encode_call(tx.fn, tx.args)) for tx in txs])
        raw = self._send(txs)
        if self._book is not None:  # kept raw: decoded when ``logs`` asks
            now = self._timestamp()
            self._book.extend((n, now, logs) for n, logs in enumerate(raw, start=self.tx_count + 1))
        self.tx_count += len(txs)
        return [self._decode(logs) for logs in raw] if decode else [[] for _ in raw]

    def block_number(self) -> int:
        """The latest block (in process: the number of transactions sent)."""
        return self.tx_count

    def timestamp(self) -> int:
        """The time the contracts see (in process: the clock; on a node: the latest block's)."""
        return self._timestamp()

    @contextlib.contextmanager
    def snapshot(self):
        """Runs the body, then puts the chain back as it was, with what this
        engine remembers of it (transactions sent, their logs)."""
        count, logged = self.tx_count, len(self._book or ())
        with self._snapshot():
            try:
                yield self
            finally:
                self.tx_count = count
                if self._book is not None:
                    del self._book[logged:]

    def logs(self, addresses: list[str], from_block: int = 0) -> list[Record]:
        """Every decoded log that the contracts at ``addresses`` (attached or
        deployed here) emitted from ``from_block`` on, in chain order. In
        process: the logs of the transactions sent through this engine (not
        of constructors)."""
        wanted = {to_checksum_address(a) for a in addresses}
        records = []
        for n, now, logs in self._book or ():
            if n < from_block:
                continue
            tx = "0x" + n.to_bytes(32, "big").hex()
            for i, (address, topics, data) in enumerate(logs):
                if to_checksum_address(address) in wanted:
                    records.extend(Record(ev, n, tx, i, now) for ev in self._decode([(address, topics, data)]))
        return records

    def call(self, contract: str, fn: str, *args: Any) -> Any:
        art = self.kinds[contract]
        return art.decode_output(fn, self._call(contract, art.encode_call(fn, args)))

    def calls(self, requests: list[tuple[str, str, tuple]]) -> list[Any]:
        return [self.call(c, fn, *args) for c, fn, args in requests]

    def describe(self, tx: Tx) -> str:
        art = self.kinds.get(tx.contract)
        return f"{art.name if art else tx.contract}.{tx.fn}"


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
