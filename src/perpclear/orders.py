"""EIP-712 orders: the typed data the clearing house verifies, and signing.

Traders sign with their private key through eth-account; the matcher submits
both signed orders to ``OrderBook.settle``. The domain binds the chain id and
the order book's address, so a signature is void on any other chain or
deployment.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from coincurve import PrivateKey
from eth_utils import keccak

DOMAIN_NAME = "perpclear"
DOMAIN_VERSION = "1"
MAX_FEE_BPS = 1_000  # the clearing house refuses fees above 10 %

ORDER_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Order": [
        {"name": "trader", "type": "address"},
        {"name": "market", "type": "uint256"},
        {"name": "is_buy", "type": "bool"},
        {"name": "size", "type": "uint256"},
        {"name": "limit_price", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "reduce_only", "type": "bool"},
        {"name": "max_fee_bps", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class Order:
    """One signed intent to trade ``size`` base units (18 decimals) of ``market``."""

    trader: str
    market: int
    is_buy: bool
    size: int
    limit_price: int
    expiry: int
    nonce: int
    reduce_only: bool = False
    # The most this order pays in fees, in bps of the fill's notional (rounded up
    # like the fee). Sign the fee you were shown; the default accepts any fee the
    # clearing house allows (10 %).
    max_fee_bps: int = MAX_FEE_BPS

    def as_tuple(self) -> tuple:
        """The struct as the contract ABI takes it (the fields in the type string's order)."""
        return tuple(getattr(self, name) for name in ORDER_FIELDS)


ORDER_FIELDS = tuple(f["name"] for f in ORDER_TYPES["Order"])
ORDER_TYPE = "Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_TYPES["Order"]) + ")"


def domain_typed_data(chain_id: int, verifying_contract: str) -> dict:
    """What a frontend needs to sign orders for one deployment (eth_signTypedData_v4
    without the message): types, primary type, domain, and the type string."""
    return {
        "types": ORDER_TYPES,
        "primaryType": "Order",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "typeString": ORDER_TYPE,
    }


def typed_data(order: Order, chain_id: int, verifying_contract: str) -> dict:
    """The full EIP-712 message for ``order`` on one deployment."""
    data = domain_typed_data(chain_id, verifying_contract)
    del data["typeString"]
    return {**data, "message": asdict(order)}


ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def _word(value: int | bool | str) -> bytes:
    """One static EIP-712 field as its 32-byte word (address, bool or uint256)."""
    if isinstance(value, str):
        value = int(value, 16)
    if not 0 <= value < 2**256:
        raise ValueError(f"orders: {value} is not a uint256")
    return int(value).to_bytes(32, "big")


@functools.lru_cache(maxsize=64)
def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """hashStruct of the EIP-712 domain (equals the order book's ``DOMAIN_SEPARATOR``)."""
    return keccak(DOMAIN_TYPEHASH + keccak(text=DOMAIN_NAME) + keccak(text=DOMAIN_VERSION)
                  + _word(chain_id) + _word(verifying_contract))


def order_digest(order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte digest the trader signs (equals ``OrderBook.order_hash``).

    Every field of ``Order`` is static, so hashStruct is the type hash and the
    fields as 32-byte words; ``test_orders`` checks it against eth-account's
    general EIP-712 encoder and the contract."""
    struct_hash = keccak(ORDER_TYPEHASH + b"".join(map(_word, order.as_tuple())))
    return keccak(b"\x19\x01" + domain_separator(chain_id, verifying_contract) + struct_hash)


@functools.lru_cache(maxsize=1 << 14)
def secp256k1_key(raw: bytes) -> PrivateKey:
    """libsecp256k1's key for 32 raw bytes, parsed once (orders and transactions are signed with it)."""
    return PrivateKey(raw)


@functools.lru_cache(maxsize=1 << 14)
def _signer(private_key: str | bytes) -> tuple[str, PrivateKey]:
    """(lower-case address, libsecp256k1 key) of ``private_key``, worked out once."""
    key = secp256k1_key(bytes.fromhex(private_key.removeprefix("0x")) if isinstance(private_key, str) else bytes(private_key))
    return "0x" + keccak(key.public_key.format(compressed=False)[1:])[-20:].hex(), key


def sign_order(signer, order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """A 65-byte r || s || v signature of ``order``. ``signer``: the trader's
    private key, or an eth-account ``LocalAccount`` (its address is then
    taken as is); the key must be the order's trader's.

    libsecp256k1 (coincurve) signs the digest directly: RFC 6979 nonces and a
    low s, the very signature eth-account makes (a test compares them)."""
    if hasattr(signer, "key") and hasattr(signer, "address"):
        address, key = signer.address.lower(), secp256k1_key(bytes(signer.key))
    else:
        address, key = _signer(signer)
    if address != order.trader.lower():
        raise ValueError("orders: key does not belong to the order's trader")
    rs_recid = key.sign_recoverable(order_digest(order, chain_id, verifying_contract), hasher=None)
    return rs_recid[:64] + bytes([27 + rs_recid[64]])
