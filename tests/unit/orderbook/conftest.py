"""Local fixtures for the OrderBook unit tests.

Everything builds on the root `system` fixture: `system.order_book` checks the
signed orders and hands each fill to `system.clearing_house.execute_fill`.
`system.order(...)` signs for the order book's EIP-712 domain. Sizes are in
18-decimal base units (WAD = one contract); prices in collateral units.
"""

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from perpclear.orders import typed_data

from harness import helper_contract

# secp256k1 group order: a signature (r, s, v) has the malleable twin (r, n - s, v ^ 1).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def ob(system):
    return system.order_book


@pytest.fixture
def ch(system):
    return system.clearing_house


@pytest.fixture
def sign_with():
    """sign_with(key, order, chain_id, contract): EIP-712 signature by any key.

    perpclear.orders.sign_order refuses a key that is not the order's trader;
    the forgery tests need exactly that.
    """

    def _sign(private_key, order, chain_id, verifying_contract) -> bytes:
        signable = encode_typed_data(full_message=typed_data(order, chain_id, verifying_contract))
        return bytes(Account.sign_message(signable, private_key).signature)

    return _sign


@pytest.fixture
def malleate():
    """malleate(signature): the high-s twin of a low-s signature (same signer, other bytes)."""

    def _malleate(signature: bytes) -> bytes:
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # v: 27 <-> 28

    return _malleate


@pytest.fixture
def wallet_container():
    """An EIP-1271 contract trader, compiled from this folder (not a project contract).

    Function-scoped: a session fixture first requested mid-module makes ape rebase
    its isolation snapshots (InvalidIsolationWarning)."""
    return helper_contract(Path(__file__).parent / "MockContractWallet.vy")
