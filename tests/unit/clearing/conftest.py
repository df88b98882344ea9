"""Local fixtures for the ClearingHouse unit tests.

Everything builds on the root `system` fixture (markets 0 = ETH-PERP at 2000,
1 = SOL-PERP at 30, both priced in whole collateral units). Sizes are in
18-decimal base units (WAD = one contract); prices and amounts in collateral
units (`system.unit` = one whole token).
"""

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from perpclear.model import ClearingModel
from perpclear.orders import typed_data

# secp256k1 group order: a signature (r, s, v) has the malleable twin (r, n - s, v ^ 1).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def ch(system):
    return system.clearing_house


@pytest.fixture
def model(system):
    """A reference model listing the same markets at the same marks as `system`."""
    reference = ClearingModel()
    for spec in system.markets:
        reference.add_market(spec.params, spec.price * system.unit, spec.loss_policy)
    return reference


@pytest.fixture
def settle(system):
    """settle(maker, taker, size, price): submits two (order, signature) pairs as the matcher."""

    def _settle(maker, taker, size, price, sender=None):
        (maker_order, maker_sig), (taker_order, taker_sig) = maker, taker
        return system.clearing_house.settle(
            maker_order.as_tuple(),
            maker_sig,
            taker_order.as_tuple(),
            taker_sig,
            size,
            price,
            sender=sender or system.matcher,
        )

    return _settle


@pytest.fixture
def open_position(system):
    """open_position(trader, counterparty, market, size, price): a signed fill, the trader as maker.

    size > 0 buys `size` for the trader, size < 0 sells; the counterparty takes the other side.
    Neither account is funded here: call `system.fund` first.
    """

    def _open(trader, counterparty, market, size, price):
        if size > 0:
            return system.trade(trader, counterparty, market, size, price, maker="buyer")
        return system.trade(counterparty, trader, market, -size, price, maker="seller")

    return _open


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
