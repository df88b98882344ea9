"""ADL: a bankrupt position closed against opposite positions in profit at the
bankruptcy price, highest rank first (Deleverager.vy), checked against the
exact model (``ClearingModel.deleverage``) fill by fill and unit for unit.

Every call goes through the harness (``Mirror``, tests/harness.py), which checks the
ledger identity after each transaction and mirrors it in the model.
"""

from __future__ import annotations

import copy
import random

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpclear.model import POLICY_ADL, WAD, ModelError
from perpclear.units import POLICY_EQUITY

from budget import by_profile
from harness import ETH, HUGE, Mirror, by_name, key

ADL_BOTH = (POLICY_ADL, POLICY_ADL)


def assert_matches_model(sim, logs, result):
    """The chain's fills, skips and run summary equal the model's, exactly."""
    fills = [(str(e.counterparty), e.size, e.rank) for e in by_name(logs, "Deleveraged")]
    assert fills == [(str(c), s, r) for c, s, r in result.fills]
    assert all(e.price == result.price and e.mark == result.mark for e in by_name(logs, "Deleveraged"))
    skipped = [(str(e.counterparty), e.reason) for e in by_name(logs, "CandidateSkipped")]
    assert skipped == [(str(c), r) for c, r in result.skipped]
    (run,) = by_name(logs, "DeleverageRun")
    assert (run.equity, run.insurance, run.residual, run.price, run.remaining) == (
        result.equity, result.insurance, result.residual, result.price, result.remaining,
    )
    for account in {c for c, _, _ in result.fills} | {result.account}:
        assert sim.ch.collateral(account) == sim.model.collateral.get(account, 0), account
        assert sim.ch.positions(account, result.market).size == sim.model.position(account, result.market).size


def assert_flat_and_settled(sim, logs, result, n):
    """The bankrupt account ends flat at zero: the vault covered what the fills
    left (at most I), or took the rounding surplus: at most n units for the
    fills' floors (n candidates supplied) and one per contract for the price grid."""
    assert sim.ch.collateral(result.account) == 0
    bankrupt, surplus = by_name(logs, "AccountBankrupt"), by_name(logs, "AdlSurplus")
    assert len(bankrupt) + len(surplus) <= 1
    if bankrupt:
        assert bankrupt[0].residual == 0 and bankrupt[0].insurance_paid <= result.insurance
    if surplus:
        contracts = -(-(sum(size for _, size, _ in result.fills) + result.remaining) // WAD)
        assert 0 < surplus[0].amount <= n + contracts + 1


def ranked(sim, market: int, long: bool) -> list[str]:
    """Opposite-side candidates (positions on side ``long``) by model rank, highest first."""
    accounts = [a for a in sim.model.accounts() if (sim.model.position(a, market).size > 0) == long
                and sim.model.position(a, market).size != 0]
    return sorted(accounts, key=lambda a: sim.model.adl_rank(a, market), reverse=True)


# ------------------------------------------------------------ the population


@pytest.mark.parametrize("decimals,n", [(6, 2), (6, 10), (6, 100), pytest.param(6, 1000, marks=pytest.mark.ci_scale),
                                         (18, 2), (18, 10), (18, 100)],
                         ids=lambda v: str(v))
def test_deleverage__population__fills_equal_the_model_and_cover_the_residual(populations, decimals, n):
    """N accounts (the EQUITY tests' populations), one more long at 9x gaps 15 %
    below its insurance: the keeper passes the 50 best-ranked shorts."""
    with populations[decimals].at(n) as sim:
        sim.set_loss_policy(ETH, POLICY_ADL)
        victim = sim.victim(501, ETH, 2_000 * sim.u, 900, long=True)
        sim.move(ETH, -1_500)
        candidates = ranked(sim, ETH, long=False)
        # The on-chain rank view equals the model's for every opposite position.
        for account in candidates:
            assert sim.adl.rank(account, ETH) == sim.model.adl_rank(account, ETH)
        assert sim.ch.health(victim.address).equity < 0
        before = {a: sim.model.health(a).equity for a in candidates}
        bad_debt = sim.ch.bad_debt()

        logs, result, _ = sim.deleverage(victim.address, ETH, candidates[:50])
        n_supplied = len(candidates[:50])

        assert_matches_model(sim, logs, result)
        assert result.remaining == 0 and not sim.model.has_position(victim.address)
        # Completeness: the counterparties paid at least R beyond the mark.
        charges = result.charges()
        assert sum(charges.values()) >= result.residual
        # Each paid |x| * gap, the same price for all; its equity fell by that, within 2 units.
        for account, charge in charges.items():
            fell = before[account] - sim.model.health(account).equity
            assert abs(fell - charge) <= 2, (account, fell, charge)
        assert_flat_and_settled(sim, logs, result, n_supplied)
        assert sim.ch.bad_debt() == bad_debt
        # Ranks are non-increasing in the order closed.
        ranks = [r for _, _, r in result.fills]
        assert ranks == sorted(ranks, reverse=True)


# ------------------------------------------------------------ the worked example


@pytest.fixture
def crash():
    """A (1,000) long 2 ETH from B (4,000) and 2 from C (3,000) at 2,000; D long
    0.5 from the market maker; the vault holds 100. ETH at 1,650: A is bankrupt."""
    sim = Mirror.in_process(6, policies=ADL_BOTH, vault_assets=100 * 10**6)
    u = sim.u
    with sim.active():
        a, b, c, d = (key(20 + i) for i in range(4))
        for k, amount in ((a, 1_000), (b, 4_000), (c, 3_000), (d, 2_000)):
            sim.fund(k.address, amount * u)
        sim.trade(a, b, 0, 2 * WAD, 2_000 * u)
        sim.trade(a, c, 0, 2 * WAD, 2_000 * u)
        sim.trade(d, sim.mm, 0, WAD // 2, 2_000 * u)  # D long: the bankrupt's own side
        sim.set_mark(0, 1_650 * u)
    return sim, a, b, c, d


def test_deleverage__stale_candidates__skipped_with_their_reason(crash):
    sim, a, b, c, d = crash
    nobody = key(30).address
    with sim.active():
        rank_b, rank_c = sim.adl.rank(b.address, 0), sim.adl.rank(c.address, 0)
        assert rank_c > rank_b > 0  # C: smaller equity behind the same profit
        # A itself, D (same side), nobody (no position), B then C (rank goes up), C again.
        logs, result, _ = sim.deleverage(a.address, 0, [a.address, d.address, nobody, b.address, c.address])
        assert_matches_model(sim, logs, result)
        assert [(str(e.counterparty), e.reason) for e in by_name(logs, "CandidateSkipped")] == [
            (a.address, 1), (d.address, 1), (nobody, 1), (c.address, 3),
        ]
        assert [e.counterparty for e in by_name(logs, "Deleveraged")] == [b.address]
        assert result.remaining == 2 * WAD  # C's half is still open: no revert, a partial run
        # A second call with C alone finishes it, at a price from the state left.
        logs, result, _ = sim.deleverage(a.address, 0, [c.address])
        assert_matches_model(sim, logs, result)
        assert result.remaining == 0
        assert_flat_and_settled(sim, logs, result, 1)
        assert sim.ch.bad_debt() == 0


def test_deleverage__price_depends_on_the_state_not_on_the_list(crash):
    """The bankruptcy price is ceil(R * WAD / |s|) from the mark, whatever the
    keeper passes: 40 more candidates (skipped) change neither the price nor
    what anyone pays. Seen before the fix: gap = ceil((R + n) * WAD / |s|) with
    n the candidates passed, so a longer list made the counterparties pay more."""
    sim, a, b, c, d = crash
    with sim.active():
        best = [c.address, b.address]
        with sim.anchor():
            _, short_run, _ = sim.deleverage(a.address, 0, best)
            paid = {x: sim.ch.collateral(x) for x in best}
        padding = [key(400 + i).address for i in range(40)]  # no position: skipped (SIDE)
        logs, result, _ = sim.deleverage(a.address, 0, padding + best)
        assert_matches_model(sim, logs, result)
        assert len(by_name(logs, "CandidateSkipped")) == 40
        assert result.price == short_run.price
        assert result.price - result.mark == -(-result.residual * WAD // (4 * WAD))
        assert {x: sim.ch.collateral(x) for x in best} == paid
        assert result.remaining == 0 and sim.ch.bad_debt() == 0


def test_adl_fill__a_compromised_deleverager_books_only_the_bankruptcy_price(crash):
    """Seen before: `adl_fill` checked only its caller, so an owner who pointed
    the hook at its own contract booked fills at any price: a victim went from
    10,000 to 0 and, through the waterfall, the vault from 5,000 to 0. Now the
    clearing house checks every fill itself: an ADL market, a bankrupt account
    the vault cannot cover, a counterparty on the other side holding what it
    closes, and the price is the bankruptcy price it computes (the caller
    passes none). The worst a rogue deleverager can do is choose who, among
    the opposite positions, pays the residual."""
    sim, a, b, c, d = crash
    with sim.active():
        evil = key(66).address
        with boa.env.prank(sim.admin):
            sim.ch.set_loss_policy_contract(POLICY_ADL, evil)
        sim.fund(key(67).address, 10_000 * sim.u)  # a bystander with money and no position
        with boa.env.prank(evil), boa.reverts("clearing: not bankrupt"):
            sim.ch.adl_fill(d.address, b.address, 0, WAD // 4)  # D is healthy
        with boa.env.prank(evil), boa.reverts("clearing: bad ADL fill"):
            sim.ch.adl_fill(a.address, d.address, 0, WAD // 4)  # D is on A's side
        with boa.env.prank(evil), boa.reverts("clearing: bad ADL fill"):
            sim.ch.adl_fill(a.address, key(67).address, 0, WAD)  # no position to close
        with boa.env.prank(evil), boa.reverts("clearing: bad ADL fill"):
            sim.ch.adl_fill(a.address, b.address, 0, 2 * WAD + 1)  # more than B holds
        sim.set_loss_policy(1, POLICY_EQUITY)
        with boa.env.prank(evil), boa.reverts("clearing: not an ADL or PROFIT market"):
            sim.ch.adl_fill(a.address, b.address, 1, WAD)

        # What it can book: B closes at the price the model's deleverage uses.
        expected = copy.deepcopy(sim.model).deleverage(a.address, 0, [b.address])
        with boa.env.prank(evil):
            price = sim.ch.adl_fill(a.address, b.address, 0, 2 * WAD)
        sim.end_transaction()
        assert price == expected.price == expected.mark + -(-expected.residual * WAD // (4 * WAD))
        sim.sync()
        sim.model.adl_fill(a.address, b.address, 0, 2 * WAD, price)
        sim.check()
        for account in (a.address, b.address):
            assert sim.ch.collateral(account) == sim.model.collateral[account]
        assert sim.ch.health(b.address).equity >= 0 and sim.ch.collateral(key(67).address) == 10_000 * sim.u


def test_deleverage__candidate_not_in_profit__skipped(crash):
    sim, a, b, c, d = crash
    with sim.active():
        e = key(31)
        sim.fund(e.address, 10_000 * sim.u)
        sim.trade(sim.mm, e, 0, WAD, 1_600 * sim.u)  # short below the mark: in loss
        assert sim.adl.rank(e.address, 0) == 0
        logs, result, _ = sim.deleverage(a.address, 0, [e.address, c.address, b.address])
        assert_matches_model(sim, logs, result)
        assert [(str(x.counterparty), x.reason) for x in by_name(logs, "CandidateSkipped")] == [(e.address, 2)]
        assert result.remaining == 0


def test_deleverage__candidate_without_equity_for_the_price__skipped():
    """B ranks first (short ETH from 1,700 on thin margin) but a SOL loss leaves it
    too little equity to pay the gap to the bankruptcy price: skipped, C pays."""
    sim = Mirror.in_process(6, policies=ADL_BOTH)
    u = sim.u
    with sim.active():
        a, b, c = (key(40 + i) for i in range(3))
        sim.fund(a.address, 1_000 * u)
        sim.fund(b.address, 300 * u)
        sim.fund(c.address, 50_000 * u)
        sim.trade(a, c, 0, 3 * WAD, 2_000 * u)
        sim.trade(a, sim.mm, 0, WAD, 2_000 * u)
        sim.set_mark(0, 1_700 * u)
        sim.trade(sim.mm, b, 0, WAD, 1_700 * u)  # B short 1 ETH at 1,700
        sim.trade(b, sim.mm, 1, 10 * WAD, 30 * u)  # B long 10 SOL at 30
        sim.set_mark(1, 5 * u)
        sim.set_mark(0, 1_500 * u)  # A: -1,000, no vault: gap ~250 per ETH
        assert sim.adl.rank(b.address, 0) > sim.adl.rank(c.address, 0) > 0
        assert 0 < sim.ch.health(b.address).equity < 252 * u
        logs, result, _ = sim.deleverage(a.address, 0, [b.address, c.address])
        assert_matches_model(sim, logs, result)
        assert [(str(e.counterparty), e.reason) for e in by_name(logs, "CandidateSkipped")] == [(b.address, 4)]
        assert [(e.counterparty, e.size) for e in by_name(logs, "Deleveraged")] == [(c.address, 3 * WAD)]
        assert result.remaining == WAD  # the market maker's share: not a candidate here


def test_deleverage__short_bankrupt__longs_sell_below_the_mark():
    sim = Mirror.in_process(18, policies=ADL_BOTH, vault_assets=10 * 10**18)
    u = sim.u
    with sim.active():
        a, b, c = (key(50 + i) for i in range(3))
        sim.fund(a.address, 1_000 * u)
        sim.fund(b.address, 3_000 * u)
        sim.fund(c.address, 9_000 * u)
        sim.trade(b, a, 0, 2 * WAD, 2_000 * u)
        sim.trade(c, a, 0, 2 * WAD, 2_000 * u)
        sim.set_mark(0, 2_350 * u)
        logs, result, _ = sim.deleverage(a.address, 0, ranked(sim, 0, long=True))
        assert_matches_model(sim, logs, result)
        assert result.price < result.mark and result.remaining == 0
        assert sum(result.charges().values()) >= result.residual
        assert_flat_and_settled(sim, logs, result, 2)
        assert sim.ch.bad_debt() == 0


# ------------------------------------------------------------ keepers and the bypass


def test_liquidate__bankrupt_in_adl_market__only_a_keeper_at_the_mark(crash):
    """A trader in profit cannot take the bankrupt position at the mark to dodge ADL;
    a keeper can when no candidate is left, and the residual becomes bad debt."""
    sim, a, b, c, d = crash
    with sim.active():
        with boa.env.prank(b.address), boa.reverts("clearing: bankrupt, keepers only"):
            sim.ch.liquidate(a.address, 0, HUGE, False)
        with pytest.raises(ModelError, match="keepers only"):
            sim.model.liquidate(a.address, 0, HUGE, b.address)
        sim.fund(sim.keeper, 10_000 * sim.u)  # the keeper takes the position over: it needs margin
        liq = sim.liquidate(a.address, 0, by_keeper=True)
        assert liq.recorded.loss_policy == POLICY_ADL
        assert liq.recorded.residual == liq.bankrupt.residual > 0
        assert sim.ch.bad_debt() == liq.bankrupt.residual


def test_liquidate__adl_market_not_bankrupt__anyone(crash):
    """Above zero equity an ADL market liquidates like any other."""
    sim, a, b, c, d = crash
    with sim.active():
        sim.set_mark(0, 1_780 * sim.u)  # A: 1,000 - 880 - fees > 0, below maintenance
        assert 0 < sim.ch.health(a.address).equity < sim.ch.health(a.address).maintenance
        liq = sim.liquidate(a.address, 0)
        assert liq.bankrupt is None


def test_deleverage__bad_calls__revert_with_reason(crash):
    sim, a, b, c, d = crash
    with sim.active():
        adl, ch = sim.adl, sim.ch
        with boa.env.prank(b.address), boa.reverts("adl: not keeper"):
            adl.deleverage(a.address, 0, [b.address])
        with boa.env.prank(sim.keeper):
            with boa.reverts("adl: unknown market"):
                adl.deleverage(a.address, 7, [b.address])
            with boa.reverts("adl: no position"):
                adl.deleverage(key(99).address, 0, [b.address])
            with boa.reverts("adl: no candidates"):
                adl.deleverage(a.address, 0, [])
            with boa.reverts("adl: not bankrupt"):
                adl.deleverage(b.address, 0, [a.address])
        sim.set_loss_policy(1, 1)
        with boa.env.prank(sim.keeper), boa.reverts("adl: wrong loss policy"):
            adl.deleverage(a.address, 1, [b.address])
        with boa.env.prank(b.address), boa.reverts("clearing: not the policy's contract"):
            ch.adl_fill(a.address, b.address, 0, WAD)
        with boa.env.prank(b.address), boa.reverts("ownership: not owner"):
            ch.set_loss_policy_contract(POLICY_ADL, b.address)


def test_deleverage__insurance_covers__refused():
    sim = Mirror.in_process(6, policies=ADL_BOTH, vault_assets=10_000 * 10**6)
    with sim.active():
        a, b = key(60), key(61)
        sim.fund(a.address, 1_000 * sim.u)
        sim.fund(b.address, 5_000 * sim.u)
        sim.trade(a, b, 0, 4 * WAD, 2_000 * sim.u)
        sim.set_mark(0, 1_650 * sim.u)
        with boa.env.prank(sim.keeper), boa.reverts("adl: insurance covers, liquidate"):
            sim.adl.deleverage(a.address, 0, [b.address])
        sim.fund(sim.keeper, 10_000 * sim.u)
        liq = sim.liquidate(a.address, 0, by_keeper=True)
        assert liq.bankrupt.residual == 0


def test_deleverage__other_positions_first():
    sim = Mirror.in_process(6, policies=ADL_BOTH)
    with sim.active():
        a, b = key(62), key(63)
        sim.fund(a.address, 1_000 * sim.u)
        sim.fund(b.address, 50_000 * sim.u)
        sim.trade(a, b, 0, 4 * WAD, 2_000 * sim.u)
        sim.trade(a, b, 1, WAD, 30 * sim.u)
        sim.set_mark(0, 1_650 * sim.u)
        with boa.env.prank(sim.keeper), boa.reverts("adl: other positions first"):
            sim.adl.deleverage(a.address, 0, [b.address])
        sim.fund(sim.keeper, 10_000 * sim.u)
        sim.liquidate(a.address, 1, by_keeper=True)  # SOL first (not the last position: no waterfall)
        logs, result, _ = sim.deleverage(a.address, 0, [b.address])
        assert_matches_model(sim, logs, result)


# ------------------------------------------------------------ property


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@settings(max_examples=by_profile(quick=10, ci=40), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_deleverage__random_books__chain_equals_model(decimals, data):
    seed = data.draw(st.integers(0, 2**32), label="seed")
    rng = random.Random(seed)
    vault = data.draw(st.integers(0, 500), label="vault")
    sim = Mirror.in_process(decimals, policies=ADL_BOTH, vault_assets=vault * 10**decimals)
    u = sim.u
    long_bankrupt = data.draw(st.booleans(), label="long_bankrupt")
    with sim.active():
        victim = key(70)
        sim.fund(victim.address, 1_000 * u)
        others = [key(71 + i) for i in range(data.draw(st.integers(1, 8), label="others"))]
        budget = 4 * WAD  # the victim's 1,000 of margin carries 4 ETH (and entry prices 5 off the mark)
        for k in others:
            sim.fund(k.address, rng.randint(1_000, 20_000) * u + rng.randint(0, u - 1))
            size = min(rng.randint(WAD // 10, 2 * WAD) + rng.randint(0, 10**12), budget)
            if size < WAD // 100:
                break
            budget -= size
            price = rng.randint(1_995, 2_005) * u
            if long_bankrupt:
                sim.trade(victim, k, 0, size, price)  # the victim buys
            else:
                sim.trade(k, victim, 0, size, price)
        others = [k for k in others if sim.model.position(k.address, 0).size]
        move = data.draw(st.integers(1_000, 4_000), label="move_bps")
        sim.move(0, -move if long_bankrupt else move)
        if sim.model.health(victim.address).equity >= 0:
            return  # not bankrupt: nothing to deleverage
        candidates = [k.address for k in others]
        rng.shuffle(candidates)
        if data.draw(st.booleans(), label="sorted"):
            candidates = ranked(sim, 0, long=not long_bankrupt)
        try:
            copy.deepcopy(sim.model).deleverage(victim.address, 0, candidates)
        except ModelError as exc:  # e.g. the vault covers it: the chain refuses alike
            with boa.env.prank(sim.keeper), boa.reverts(str(exc)):
                sim.adl.deleverage(victim.address, 0, candidates)
            return
        logs, result, _ = sim.deleverage(victim.address, 0, candidates)
        assert_matches_model(sim, logs, result)
        if result.remaining == 0:
            assert sum(result.charges().values()) >= result.residual
            assert_flat_and_settled(sim, logs, result, len(candidates))
            assert sim.ch.bad_debt() == 0
        for k in others:
            assert sim.ch.health(k.address).equity >= 0
