"""No escape through ape on the embedded chain (test_no_escape.py does it in
titanoboa): right after a bankrupt liquidation, in the next block (ape mines
one block per transaction), a trader who profits from the gap cannot withdraw
its EQUITY charge; conservation is checked after every transaction (the
``system`` fixture's ledger guard)."""

import ape
import pytest

from perpclear.model import WAD

ETH = 0


@pytest.fixture(scope="module")
def decimals():
    """6-decimal collateral only."""
    return 6


def test_no_escape__ape_withdraw_right_after_the_bankruptcy(system, traders, liquidator):
    """A withdrawal of the charge is refused; what is left after paying it is not."""
    s, ch = system, system.clearing_house
    u = s.unit
    maker, trader, victim = traders[0], traders[1], traders[2]
    s.fund(maker, 100_000 * u)
    s.fund(trader, 10_000 * u)
    s.fund(victim, 2_000 * u)
    s.fund(liquidator, 100_000 * u)
    s.trade(maker, trader, ETH, 2 * WAD, 2_000 * u)  # T short 2
    s.trade(victim, maker, ETH, 2_000 * u * 95 // 10 * WAD // (2_000 * u), 2_000 * u)  # victim long 9.5x
    s.set_mark(ETH, 1_700 * u)
    before = ch.health(trader)
    collateral = ch.collateral(trader)
    room = min(collateral, before.equity - before.initial)

    receipt = ch.liquidate(victim, ETH, 10**30, False, sender=liquidator)
    print(f"\n[gas] ape: bankrupt liquidation + EQUITY (first socialization, no vault): {receipt.gas_used:,}")
    (socialized,) = ch.LossSocialized.from_receipt(receipt)
    assert socialized.booked == socialized.residual > 0
    shown = before.equity - ch.health(trader).equity
    assert shown > 0

    with ape.reverts():
        ch.withdraw(room, sender=trader)
    receipt = ch.withdraw(room - shown, sender=trader)
    print(f"[gas] ape: withdraw with one pending EQUITY charge settled: {receipt.gas_used:,}")
    (settled,) = [e for e in ch.LossSettled.from_receipt(receipt) if e.account == trader.address]
    assert settled.charge == shown
    with ape.reverts():
        ch.withdraw(1, sender=trader)
