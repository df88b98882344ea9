"""ADL in the cascade runner and the keeper's queue (perpclear.adl): a gap
under ADL closes bankrupt positions against the most profitable, most
leveraged opposite positions, at one bankruptcy price per call, and leaves no
bad debt; titanoboa and revm agree; the queue is the on-chain ranking."""

import pytest

from perpclear.adl import queue, queue_position
from perpclear.cascade import Cascade, run_cascade
from perpclear.engine import BoaEngine, RevmEngine
from perpclear.scenario import load_scenario


def gap_adl():
    sc = load_scenario("gap-30")
    return sc.with_overrides(loss_policy="ADL", traders={**sc.traders.model_dump(), "count": 40})


@pytest.fixture(scope="module")
def adl_result():
    return run_cascade(gap_adl(), RevmEngine())


def test_gap_under_adl__deleverages_and_keeps_every_invariant(adl_result):
    r, t = adl_result, adl_result.totals()
    assert r.ok, r.invariants
    assert t["deleveraged"] > 0 and t["adl_residual"] > 0 and t["bad_debt"] == 0 and t["socialized"] == 0
    # Each call closed its position at one price, ranks non-increasing; the fills cover its R.
    for run in r.adl_runs:
        fills = [f for f in r.deleveraged if f["account"] == run["account"] and f["block"] == run["block"]
                 and f["price"] == run["price"]]
        assert fills and all(f["mark"] == run["mark"] for f in fills)
        ranks = [f["rank"] for f in fills]
        assert ranks == sorted(ranks, reverse=True)
        if run["remaining"] == 0:
            assert sum(f["charge"] for f in fills) >= run["residual"]
    # No pro-rata charge anywhere: only the deleveraged counterparties paid for the losses.
    assert all(s["event"] != "LossSettled" or s["charge"] == 0 for s in r.settlements)


def test_gap_under_adl__titanoboa_and_revm_agree(adl_result):
    assert run_cascade(gap_adl(), BoaEngine()).outcome() == adl_result.outcome()


def test_queue__the_side_in_profit_ranked_by_the_contract():
    runner = Cascade(gap_adl(), RevmEngine())
    d = runner.setup()
    e, ch, adl = runner.engine, d.clearing_house, d.deleverager
    mark = e.call(d.oracle, "price", 0)
    d.set_marks({0: mark * 85 // 100})  # longs lose, shorts gain
    accounts = sorted(runner.keeper.holders | {runner.roles.market_maker.address})
    shorts = queue(e, ch, adl, accounts, 0, long=False)
    assert len(shorts) >= 5
    ranks = [r for _, r in shorts]
    assert ranks == sorted(ranks, reverse=True) and min(ranks) > 0
    assert all(e.call(adl, "rank", a, 0) == r for a, r in shorts)
    assert all(e.call(ch, "positions", a, 0)[0] < 0 for a, _ in shorts)
    assert queue(e, ch, adl, accounts, 0, long=True) == []  # no long is in profit
    top, last = shorts[0][0], shorts[-1][0]
    assert queue_position(e, ch, adl, accounts, top, 0) == 0
    assert queue_position(e, ch, adl, accounts, last, 0) == len(shorts) - 1
    # The lens gives the same indicator in one call: rank and place in the queue.
    for place, (account, rank) in enumerate(shorts):
        assert d.view("adl_indicator", account, 0, accounts) == (rank, place, True)
    a_long = next(a for a in accounts if e.call(ch, "positions", a, 0)[0] > 0)
    assert d.view("adl_indicator", a_long, 0, accounts) == (0, 0, False)
    a_long = next(a for a in accounts if e.call(ch, "positions", a, 0)[0] > 0)
    assert queue_position(e, ch, adl, accounts, a_long, 0) is None
