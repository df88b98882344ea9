"""Signed raw transactions over JSON-RPC to any node."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import urllib.parse
from typing import Any, Iterable

import rlp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from perpclear.engine.base import (BATCH, DEPLOY_GAS, Artifact, Engine, EngineError, NodeError, Record, Tx,
                                   abi_decode, abi_encode, as_bytes, as_int)
from perpclear.orders import secp256k1_key


def sign_1559(key: bytes, chain_id: int, nonce: int, max_priority_fee: int, max_fee: int, gas: int, to: str | None,
              value: int, data: bytes) -> bytes:
    """A signed EIP-1559 (type 2) transaction without an access list, raw:
    0x02 || rlp([chain id, nonce, tips, fee cap, gas, to, value, data, [], y, r, s]).
    libsecp256k1 signs the hash directly (RFC 6979, low s): the very bytes
    eth-account makes, ~4x faster (a test compares them)."""
    fields = [chain_id, nonce, max_priority_fee, max_fee, gas, bytes.fromhex(to[2:]) if to else b"", value, bytes(data), []]
    sig = secp256k1_key(bytes(key)).sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
    return b"\x02" + rlp.encode(fields + [sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")])


class _JsonPost:
    """JSON over one kept-alive HTTP(S) connection (http.client: a fraction of
    the per-request cost of requests, which a cascade pays thousands of times)."""

    def __init__(self, uri: str, timeout: float = 60):
        parts = urllib.parse.urlsplit(uri)
        self._connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._host, self._port, self._timeout = parts.hostname, parts.port, timeout
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._conn: http.client.HTTPConnection | None = None

    def post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connection_class(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                return json.loads(self._conn.getresponse().read())
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The node closed the idle connection before reading the request: open another once.
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
            except Exception:
                self._conn.close()
                self._conn = None
                raise


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

    def __init__(self, web3: Any, funder: LocalAccount, label: str = "chain", shared: bool = False):
        """``shared``: other clients send from the same accounts (ape's own
        transactions in a test): every send reads its senders' nonces afresh."""
        super().__init__()
        self.shared = shared
        self.w3 = web3
        self.funder = funder
        self.name = label
        self._book = None  # the node keeps the logs
        self._nonces: dict[str, int] = {}
        self._chain_id = web3.eth.chain_id
        self._batch = False
        self._http = None
        uri = getattr(web3.provider, "endpoint_uri", None)
        if isinstance(uri, str) and uri.startswith("http"):
            self._http = _JsonPost(uri)
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
        try:
            return self._http.post(payload)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise NodeError(f"the node at {self._uri} stopped answering after block {self._last_block} "
                            f"({type(exc).__name__})") from None

    def _rpc(self, method: str, params: list) -> Any:
        response = self._request(method, params)
        if response.get("error"):
            raise EngineError(f"{method}: {response['error'].get('message', response['error'])}")
        return response["result"]

    def block_number(self) -> int:
        return as_int(self._rpc("eth_blockNumber", []))

    def code(self, address: str) -> bytes:
        return as_bytes(self._rpc("eth_getCode", [address, "latest"]) or "0x")

    def logs(self, addresses: list[str], from_block: int = 0) -> list[Record]:
        """``eth_getLogs`` of ``addresses`` from ``from_block``, decoded, with
        each block's timestamp (``eth_getBlockByNumber``, batched)."""
        logs = self._rpc("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": "latest", "address": list(addresses)}])
        blocks = sorted({as_int(log["blockNumber"]) for log in logs})
        stamps = {}
        for i in range(0, len(blocks), BATCH):
            part = blocks[i : i + BATCH]
            requests = [("eth_getBlockByNumber", [hex(b), False]) for b in part]
            answers = self._request_batch(requests) if self._batch else [{"result": self._rpc(*r)} for r in requests]
            for b, r in zip(part, answers):
                stamps[b] = as_int(r["result"]["timestamp"])
        records = []
        for log in logs:
            decoded = self._decode([(log["address"], [as_bytes(t) for t in log["topics"]], as_bytes(log["data"]))])
            if decoded:
                tx = log["transactionHash"]
                tx = tx if isinstance(tx, str) else "0x" + bytes(tx).hex()
                block = as_int(log["blockNumber"])
                records.append(Record(decoded[0], block, tx, as_int(log["logIndex"]), stamps[block]))
        records.sort(key=lambda r: (r.block, r.index))
        return records

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
        return self._submit_all([(sender, to, data, gas, value)], fees)[0]

    def _submit_all(self, txs: list[tuple], fees: dict) -> list[str]:
        """Signs each (sender, to, data, gas, value) and sends them, in
        JSON-RPC batches where the provider allows it; returns the hashes."""
        raws = []
        if self.shared:
            self._nonces.clear()
        for sender, to, data, gas, value in txs:
            nonce = self._nonce(sender.address)
            if isinstance(sender, LocalAccount):
                raw = sign_1559(sender.key, self._chain_id, nonce, fees["maxPriorityFeePerGas"], fees["maxFeePerGas"],
                                gas, to, value, data)
            else:  # another signer (an ape account, a hardware wallet): its own signing
                tx = {"chainId": self._chain_id, "nonce": nonce, "gas": gas, "value": value, "data": data, "type": 2, **fees}
                if to is not None:
                    tx["to"] = to
                raw = bytes(sender.sign_transaction(tx).raw_transaction)
            raws.append(("eth_sendRawTransaction", ["0x" + raw.hex()]))
        if self._batch and len(raws) > 1:
            answers = [a for i in range(0, len(raws), BATCH) for a in self._request_batch(raws[i : i + BATCH])]
        else:
            answers = [self._request(*r) for r in raws]
        refused = next((a["error"] for a in answers if a.get("error")), None)
        if refused is not None:
            for sender, *_ in txs:  # read again from the node next time
                self._nonces.pop(sender.address, None)
            raise EngineError(f"node refused a transaction: eth_sendRawTransaction: {refused.get('message', refused)}")
        return [a["result"] for a in answers]

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
        hashes = self._mine_batch(lambda: self._submit_all(
            [(tx.sender, tx.contract, self.kinds[tx.contract].encode_call(tx.fn, tx.args), tx.gas, 0) for tx in txs], fees))
        out = []
        for tx, receipt in zip(txs, self._receipts(hashes)):
            if as_int(receipt["status"]) != 1:
                raise EngineError(f"{self.describe(tx)} reverted: {self._revert_reason(tx, receipt)}")
            out.append(
                [(log["address"], [as_bytes(t) for t in log["topics"]], as_bytes(log["data"])) for log in receipt["logs"]]
            )
        return out

    def _timestamp(self) -> int:
        return as_int(self._rpc("eth_getBlockByNumber", ["latest", False])["timestamp"])

    def advance(self, seconds: int) -> None:
        """Mines one empty block ``seconds`` after the latest."""
        then = self._timestamp() + seconds
        if self._anvil:
            self._rpc("evm_mine", [then])
        else:  # eth-tester (ape's embedded chain)
            self._rpc("testing_timeTravel", [then])
            self._rpc("evm_mine", [1])

    @contextlib.contextmanager
    def _snapshot(self):
        checkpoint = self._rpc("evm_snapshot", [])
        try:
            yield
        finally:
            self._rpc("evm_revert", [checkpoint])
            self._nonces.clear()

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
        self._receipts(self._mine_batch(lambda: self._submit_all([(self.funder, a.address, b"", 21_000, amount) for a in accounts], fees)))


# The in-process engines by name (the CLI's --network and the plugin's option).
