"""Local fixtures for the ClearingHouse unit tests.

Everything builds on the root `system` fixture (markets 0 = ETH-PERP at 2000,
1 = SOL-PERP at 30, both priced in whole collateral units). Sizes are in
18-decimal base units (WAD = one contract); prices and amounts in collateral
units (`system.unit` = one whole token).

Fills reach the clearing house only through its order book
(`ClearingHouse.execute_fill` is callable by `system.order_book` alone): the
`settle` and `open_position` fixtures sign orders and go through
`OrderBook.settle`. The order rules themselves (signatures, cancels, nonces,
fills per order, matchers) are tested in tests/unit/orderbook/. `direct` is a
second clearing house whose order book is a plain account, for the few
clearing-house checks the real order book never lets through.
"""

from dataclasses import dataclass
from typing import Any

import pytest

from perpclear.model import WAD, ClearingModel
from perpclear.system import System



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


@dataclass
class Direct:
    """A clearing house whose order book is the plain account `book`."""

    ch: Any
    book: Any
    system: System  # the same clearing house as a `System` (for funding and the ledger check)

    def fill(self, buyer, seller, market, size, price, buyer_is_maker=True, buyer_reduce_only=False,
             seller_reduce_only=False, call=False):
        """execute_fill as the order book; with call=True an eth_call returning (buyer_fee, seller_fee)."""
        args = (buyer, seller, market, size, price, buyer_is_maker, buyer_reduce_only, seller_reduce_only)
        if call:
            return tuple(self.ch.execute_fill.call(*args, sender=self.book))
        return self.ch.execute_fill(*args, sender=self.book)


@pytest.fixture
def direct(system, project, admin, accounts):
    """A second clearing house over `system`'s token, oracle and vault, with the
    same markets and a lens of its own, whose order book is an account
    (accounts[15]) that calls `execute_fill` directly. Not wired to the vault and not under the ledger
    guard: tests call `direct.system.conservation_errors()` themselves."""
    book = accounts[15]
    ch = project.ClearingHouse.deploy(system.token, system.oracle, system.vault, admin, system.timelock, sender=admin)
    ch.set_order_book(book, sender=admin)
    for policy in {spec.loss_policy for spec in system.markets}:
        ch.set_loss_policy_contract(policy, system.clearing_house.loss_policies(policy), sender=admin)
    for spec in system.markets:
        ch.add_market(spec.params.as_tuple(), spec.loss_policy, sender=admin)
    handle = System(
        token=system.token,
        oracle=system.oracle,
        vault=system.vault,
        clearing_house=ch,
        order_book=book,
        deleverager=None,
        profit_policy=None,
        lens=project.ClearingLens.deploy(ch, sender=admin),
        keeper_contract=None,
        timelock=system.timelock,
        admin=admin,
        keeper=system.keeper,
        matcher=None,
        decimals=system.decimals,
        markets=system.markets,
        chain_id=system.chain_id,
    )
    return Direct(ch=ch, book=book, system=handle)


@pytest.fixture
def trader(traders):
    """The account a test follows."""
    return traders[0]


@pytest.fixture
def counterparty(traders):
    """The other side of the trader's fills."""
    return traders[1]


@pytest.fixture
def open_long(mirror, trader, counterparty):
    """open_long(margin, size=WAD, also=()): the trader buys `size` ETH-PERP at
    2,000 from the counterparty on `margin` whole tokens; the counterparty and
    every account in `also` hold 10,000. Returns the mirror."""

    def _open(margin, size=WAD, also=()):
        unit = mirror.system.unit
        mirror.fund(trader, margin * unit)
        for account in (counterparty, *also):
            mirror.fund(account, 10_000 * unit)
        mirror.trade(trader, counterparty, 0, size, 2_000 * unit)
        return mirror

    return _open
