"""Packed storage at its boundaries: a position's size and open notional share
one word (104 and 152 bits, two's complement); the fees owed to the protocol
and to the insurance vault share one (128 bits each). The widths follow from the
caps: |size| <= the open-interest cap <= MAX_SIZE = 10**30 and |open
notional| <= MAX_SIZE * MAX_PRICE / WAD = 10**42. The largest position at the
largest price, with 18-decimal collateral, long and short, must store, read
back, reduce and close exactly as the model books it."""

import copy

import pytest

from perpclear.engine import EngineError
from perpclear.model import WAD, MarketParams, ModelError
from perpclear.units import FEE_BOUND

from harness import Mirror, key

MAX_SIZE = MAX_PRICE = 10**30
INT128_MAX = 2**127 - 1  # the largest single deposit
# 2 bps initial margin: the largest notional (1e42) needs 2e38, two deposits.
WIDE = MarketParams(imr_bps=2, mmr_bps=1, penalty_bps=0, maker_fee_bps=0, taker_fee_bps=0, oi_cap=MAX_SIZE)
BIG = 2  # the market id after ETH and SOL


def same_as_model(sim, *traders):
    for trader in traders:
        chain, model = sim.ch.positions(trader.address, BIG), sim.model.position(trader.address, BIG)
        assert (chain.size, chain.open_notional) == (model.size, model.open_notional)
        assert sim.ch.collateral(trader.address) == sim.model.collateral[trader.address]
    sim.check_accounts([t.address for t in traders])


def at_the_largest_price(params: MarketParams, first_key: int):
    """An 18-decimal system with market BIG (``params``) marked at MAX_PRICE, and
    two traders holding two of the largest deposits each: (sim, long, short).
    Use inside ``sim.active()``."""
    sim = Mirror.in_process(18, extra_markets=((MAX_PRICE // 10**18, params),))
    long, short = key(first_key), key(first_key + 1)
    with sim.active():
        sim.set_mark(BIG, MAX_PRICE)
        for trader in (long, short):
            sim.mint(trader.address, 2 * INT128_MAX)
            sim.deposit(trader.address, INT128_MAX)
            sim.deposit(trader.address, INT128_MAX)
    return sim, long, short


def test_packing__the_largest_position_at_the_largest_price_round_trips():
    sim, long, short = at_the_largest_price(WIDE, 9_800_001)
    with sim.active():
        notional = MAX_SIZE * MAX_PRICE // WAD
        sim.trade(long, short, BIG, MAX_SIZE, MAX_PRICE)
        assert tuple(sim.ch.positions(long.address, BIG))[:2] == (MAX_SIZE, notional)
        assert tuple(sim.ch.positions(short.address, BIG))[:2] == (-MAX_SIZE, -notional)
        assert sim.lens.markets(BIG).long_open_interest == MAX_SIZE
        same_as_model(sim, long, short)
        # a third back at a lower price: cost basis released rounded up, both signs
        sim.set_mark(BIG, MAX_PRICE - 1)
        sim.trade(short, long, BIG, MAX_SIZE // 3, MAX_PRICE - 1)
        same_as_model(sim, long, short)
        # and the rest: both flat, the words back to zero
        sim.trade(short, long, BIG, MAX_SIZE - MAX_SIZE // 3, MAX_PRICE - 1)
        for trader in (long, short):
            assert tuple(sim.ch.positions(trader.address, BIG)) == (0, 0, 0, 0)
            assert sim.ch.open_markets(trader.address) == 0
        same_as_model(sim, long, short)


# 10 % fees each side, all owed to the protocol: a fill of s contracts at
# MAX_PRICE owes 2 * s * 10**11 units of fees.
FEES = MarketParams(imr_bps=2, mmr_bps=1, penalty_bps=0, maker_fee_bps=1_000, taker_fee_bps=1_000,
                    fee_insurance_share_bps=0, oi_cap=MAX_SIZE)


def test_packing__fees_owed_stop_below_2_128_until_swept():
    """Both recipients' fees share one word, 128 bits each. Fees up to the bound
    read back exactly and leave the other half untouched; a fill that would
    cross it reverts with its reason and books nothing; once anyone sweeps,
    the same fill goes through."""
    sim, long, short = at_the_largest_price(FEES, 9_800_011)
    with sim.active():
        first = 15 * 10**26
        sim.trade(long, short, BIG, first, MAX_PRICE)
        assert sim.ch.protocol_fees() == 2 * first * 10**11 == sim.model.protocol_fees < FEE_BOUND
        assert sim.ch.insurance_fees() == 0
        second = 3 * 10**26  # 6e37 more: past 2**128 (3.4e38)
        assert sim.ch.protocol_fees() + 2 * second * 10**11 >= FEE_BOUND
        before = tuple(sim.ch.positions(long.address, BIG))
        with pytest.raises(EngineError, match="clearing: fees overflow, sweep them"):
            sim.trade(long, short, BIG, second, MAX_PRICE)
        with pytest.raises(ModelError, match="clearing: fees overflow, sweep them"):
            copy.deepcopy(sim.model).trade(long.address, short.address, BIG, second, MAX_PRICE, long.address)
        assert tuple(sim.ch.positions(long.address, BIG)) == before
        sim.send(long, sim.d.clearing_house, "sweep_fees")
        sim.model.sweep_fees()
        assert (sim.ch.protocol_fees(), sim.ch.insurance_fees()) == (0, 0)
        sim.trade(long, short, BIG, second, MAX_PRICE)
        assert sim.ch.protocol_fees() == 2 * second * 10**11 == sim.model.protocol_fees
        same_as_model(sim, long, short)
