"""Funding: keeper-set rates, per-second accrual on the market's two side
indexes (funding moves both alike; only the OPEN_INTEREST loss policy moves one
side alone, see test_waterfall), and settlement into collateral (payer rounded
up, receiver rounded down).

Story used throughout: a long trader buys 1.5 ETH-PERP (plus one wei, so that
amounts never divide evenly) at 2_000 from a short trader; both hold 10_000 of
margin. The keeper then sets a rate and time passes.
"""

from fractions import Fraction
from math import ceil, floor

import ape
import pytest
from perpclear.model import FUNDING_SCALE, WAD

from harness import by_name

ETH = 0
SOL = 1
SIZE = 3 * WAD // 2 + 1  # 1.5 ETH and one wei
# About 0.044% of the mark per hour: 123_456_789 / 10**18 per second.
RATE = 123_456_789
MAX_RATE = 10**14  # the default MarketParams.max_funding_rate


@pytest.fixture
def opened(open_long):
    """Long 1.5 ETH against short 1.5 ETH at 2_000, rate still zero."""
    return open_long(10_000, SIZE)


def owed(size, rate, mark, elapsed):
    """Funding of a position as an exact fraction (> 0: paid)."""
    return Fraction(size * rate * mark * elapsed, FUNDING_SCALE)


# ------------------------------------------------------------ set_funding_rate


def test_set_funding_rate__not_keeper__reverts(system, traders):
    with ape.reverts("clearing: not keeper"):
        system.clearing_house.set_funding_rate(ETH, RATE, sender=traders[0])
    # The owner has no keeper role unless it grants itself one.
    with ape.reverts("clearing: not keeper"):
        system.clearing_house.set_funding_rate(ETH, RATE, sender=system.admin)


def test_set_funding_rate__unknown_market__reverts(system):
    # Markets 0 and 1 exist; 2 does not.
    with ape.reverts("clearing: unknown market"):
        system.clearing_house.set_funding_rate(2, RATE, sender=system.keeper)


def test_set_funding_rate__above_cap__reverts(system):
    # The cap is 10**14 (0.01% of the mark per second), for either side paying.
    ch = system.clearing_house
    with ape.reverts("clearing: funding rate too high"):
        ch.set_funding_rate(ETH, MAX_RATE + 1, sender=system.keeper)
    with ape.reverts("clearing: funding rate too high"):
        ch.set_funding_rate(ETH, -MAX_RATE - 1, sender=system.keeper)


def test_set_funding_rate__at_cap__accepted_both_signs(mirror):
    mirror.set_funding_rate(ETH, MAX_RATE)
    assert mirror.lens.markets(ETH).funding_rate == MAX_RATE
    mirror.set_funding_rate(SOL, -MAX_RATE)
    assert mirror.lens.markets(SOL).funding_rate == -MAX_RATE
    mirror.agree()


def test_set_funding_rate__emits_funding_rate_set(mirror):
    sent = mirror.set_funding_rate(ETH, RATE)
    events = by_name(sent, "FundingRateSet")
    assert len(events) == 1
    assert events[0].market == ETH
    assert events[0].rate == RATE
    assert (events[0].long_index, events[0].short_index) == (0, 0)  # nothing accrued yet at a zero rate
    # A zero old rate moves last_accrual but logs no FundingAccrued.
    assert by_name(sent, "FundingAccrued") == []
    assert mirror.lens.markets(ETH).last_accrual == mirror.now
    mirror.agree()


def test_set_funding_rate__mid_way__accrues_old_rate_first(opened, trader, counterparty):
    mirror, unit = opened, opened.system.unit
    mark = 2_000 * unit
    first = mirror.set_funding_rate(ETH, RATE)
    t_first = first.timestamp
    mirror.wait(300)  # 300 s at RATE ...

    second = mirror.set_funding_rate(ETH, -2 * RATE)
    t_second = second.timestamp
    index_at_change = RATE * mark * (t_second - t_first)
    (accrued,) = by_name(second, "FundingAccrued")
    assert (accrued.market, accrued.long_index, accrued.short_index, accrued.rate, accrued.price, accrued.elapsed) == (
        ETH,
        index_at_change,
        index_at_change,  # funding moves both sides alike
        RATE,  # the old rate is the one accrued
        mark,
        t_second - t_first,
    )
    (rate_set,) = by_name(second, "FundingRateSet")
    assert (rate_set.rate, rate_set.long_index, rate_set.short_index) == (-2 * RATE, index_at_change, index_at_change)

    mirror.wait(500)  # ... then 500 s at -2 * RATE: shorts pay back twice as fast
    sent = mirror.settle(trader, by=counterparty)[2]
    t_settle = sent.timestamp
    exact = owed(SIZE, RATE, mark, t_second - t_first) + owed(SIZE, -2 * RATE, mark, t_settle - t_second)
    (settled,) = by_name(sent, "FundingSettled")
    assert exact < 0  # 300 s paying, then more than 250 s receiving twice as much
    assert settled.amount == ceil(exact)  # received, rounded toward the system
    mirror.agree(trader, counterparty)


# ------------------------------------------------------------ accrual and settlement


def test_pending_funding__after_time__equals_model(opened, trader, counterparty):
    mirror, unit = opened, opened.system.unit
    start = mirror.set_funding_rate(ETH, RATE).timestamp
    mirror.wait(600)

    # Both views at the same block: ten minutes of 1.5 ETH at 2_000.
    exact = owed(SIZE, RATE, 2_000 * unit, mirror.now - start)
    assert exact.denominator != 1
    pay = mirror.lens.pending_funding(trader, ETH)
    receive = mirror.lens.pending_funding(counterparty, ETH)
    assert pay == ceil(exact) > 0  # the long pays the extra unit
    assert receive == -floor(exact)  # the short receives one unit less
    assert pay + receive == 1
    # Market 1 has no position: nothing pending.
    assert mirror.lens.pending_funding(trader, SOL) == 0
    mirror.agree(trader, counterparty)


def test_pending_funding__unknown_market__reverts(system, traders):
    with ape.reverts("lens: unknown market"):
        system.lens.pending_funding(traders[0], 2)


def test_settle_funding__positive_rate__longs_pay_shorts(opened, trader, counterparty, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    mark = 2_000 * unit
    start = mirror.set_funding_rate(ETH, RATE).timestamp
    mirror.wait(600)

    # Anyone may settle anyone: the liquidator settles both traders.
    long_events = mirror.settle(trader, by=liquidator)[2]
    short_events = mirror.settle(counterparty, by=liquidator)[2]

    paid_exact = owed(SIZE, RATE, mark, long_events.timestamp - start)
    received_exact = owed(SIZE, RATE, mark, short_events.timestamp - start)
    (paid_log,) = by_name(long_events, "FundingSettled")
    (received_log,) = by_name(short_events, "FundingSettled")
    assert (paid_log.account, paid_log.market) == (trader.address, ETH)
    assert (received_log.account, received_log.market) == (counterparty.address, ETH)
    assert paid_log.amount == ceil(paid_exact) > 0  # rounded up
    assert received_log.amount == -floor(received_exact) < 0  # rounded down

    # Funding is paid in and out of the pool: it holds what was paid minus what was received.
    assert ch.funding_pool() == paid_log.amount + received_log.amount
    fees_long = ceil(Fraction(SIZE * 2_000 * unit // WAD * 2, 10_000))  # maker, 2 bps
    fees_short = ceil(Fraction(SIZE * 2_000 * unit // WAD * 5, 10_000))  # taker, 5 bps
    assert ch.collateral(trader) == 10_000 * unit - fees_long - paid_log.amount
    assert ch.collateral(counterparty) == 10_000 * unit - fees_short - received_log.amount
    # Each position snapshots its own side's index; funding moved both alike.
    state = mirror.lens.markets(ETH)
    assert state.long_index == state.short_index == RATE * mark * (short_events.timestamp - start)
    one_block = short_events.timestamp - long_events.timestamp
    assert ch.positions(trader, ETH).funding_index == state.long_index - RATE * mark * one_block
    assert ch.positions(counterparty, ETH).funding_index == state.short_index
    mirror.agree(trader, counterparty)


def test_settle_funding__negative_rate__shorts_pay_longs(opened, trader, counterparty, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    mark = 2_000 * unit
    start = mirror.set_funding_rate(ETH, -3 * RATE).timestamp
    mirror.wait(900)
    assert mirror.lens.pending_funding(counterparty, ETH) > 0
    assert mirror.lens.pending_funding(trader, ETH) < 0

    short_events = mirror.settle(counterparty, by=liquidator)[2]
    long_events = mirror.settle(trader, by=liquidator)[2]
    (paid_log,) = by_name(short_events, "FundingSettled")
    (received_log,) = by_name(long_events, "FundingSettled")
    # The short's size is negative, so -SIZE * -rate > 0: it pays.
    assert paid_log.amount == ceil(owed(-SIZE, -3 * RATE, mark, short_events.timestamp - start)) > 0
    assert received_log.amount == ceil(owed(SIZE, -3 * RATE, mark, long_events.timestamp - start)) < 0
    assert ch.funding_pool() == paid_log.amount + received_log.amount
    mirror.agree(trader, counterparty)


def test_settle_funding__no_position__does_nothing(mirror, traders, liquidator):
    unit = mirror.system.unit
    mirror.fund(traders[2], 1_000 * unit)
    mirror.set_funding_rate(ETH, RATE)
    mirror.wait(600)
    sent = mirror.settle(traders[2], by=liquidator)[2]
    assert by_name(sent, "FundingSettled") == []
    assert mirror.ch.collateral(traders[2]) == 1_000 * unit
    mirror.agree(traders[2])


def test_settle_funding__price_moves__accrues_at_the_mark_of_each_accrual(
    opened, trader, counterparty, liquidator
):
    mirror, unit = opened, opened.system.unit
    start = mirror.set_funding_rate(ETH, RATE).timestamp
    mirror.wait(400)
    # The mark moves to 2_500 without touching the clearing house: the whole
    # period since the last accrual is then accrued at the new mark.
    mirror.set_mark(ETH, 2_500 * unit)
    sent = mirror.settle(trader, by=liquidator)[2]
    (accrued,) = by_name(sent, "FundingAccrued")
    assert accrued.price == 2_500 * unit
    assert accrued.elapsed == sent.timestamp - start
    assert accrued.long_index == accrued.short_index == RATE * 2_500 * unit * (sent.timestamp - start)
    mirror.agree(trader, counterparty)
