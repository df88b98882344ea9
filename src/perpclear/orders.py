"""EIP-712 orders: the typed data the clearing house verifies, and signing.

Traders sign with their private key through eth-account; the matcher submits
both signed orders to ``OrderBook.settle``. The domain binds the chain id and
the order book's address, so a signature is void on any other chain or
deployment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
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
        """The struct as the contract ABI takes it."""
        return tuple(asdict(self).values())


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


def order_digest(order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte digest the trader signs (equals ``OrderBook.order_hash``)."""
    signable = encode_typed_data(full_message=typed_data(order, chain_id, verifying_contract))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def sign_order(private_key: str | bytes, order: Order, chain_id: int, verifying_contract: str) -> bytes:
    """A 65-byte r || s || v signature of ``order``; the key must be the trader's."""
    signable = encode_typed_data(full_message=typed_data(order, chain_id, verifying_contract))
    signed = Account.sign_message(signable, private_key)
    if Account.from_key(private_key).address.lower() != order.trader.lower():
        raise ValueError("orders: key does not belong to the order's trader")
    return signed.signature
