"""PROFIT: a bankrupt account's residual charged to the accounts in profit in its
market, pro rata to that profit and at most all of it (ProfitPolicy.clawback),
checked against the exact model (``ClearingModel.clawback``) payer by payer.

The keeper calls ``clawback`` while the bankrupt position is still open (only
keepers may touch it while its equity is negative), then liquidates it at the
mark; the waterfall finds what the vault covers and nothing more.
"""

from __future__ import annotations

import boa
import pytest

from perpclear.audit import run_audit
from perpclear.model import WAD, MarketParams, ModelError
from perpclear.units import POLICY_EQUITY, POLICY_PROFIT

from harness import ETH, MARKETS, Mirror, by_name, key

PROFIT_BOTH = (POLICY_PROFIT, POLICY_PROFIT)
NO_FEES = MarketParams(maker_fee_bps=0, taker_fee_bps=0)


def assert_matches_model(sim, sent, result):
    """The chain's charges, skips and run equal the model's, to the unit; each charge
    is within one unit of the exact share R * profit / P and they add up to min(R, P)."""
    # Every payer counted in P is logged, in order, with its charge (0 when its share floors to 0).
    assert [(str(e.payer), e.amount, e.profit) for e in by_name(sent, "ProfitCharged")] == [
        (c, result.charged[c], p) for c, p in result.profits.items()]
    assert [(str(e.counterparty), e.reason) for e in by_name(sent, "CandidateSkipped")] == result.skipped
    (run,) = by_name(sent, "ClawbackRun")
    assert (run.equity, run.insurance, run.residual, run.profit, run.charged, run.mark) == (
        result.equity, result.insurance, result.residual, result.total_profit, sum(result.charged.values()), result.mark)
    exact = result.exact()
    for payer, share in exact.items():
        assert abs(result.charged.get(payer, 0) - share) < 1, payer
        assert result.charged.get(payer, 0) <= result.profits[payer]
    assert sum(result.charged.values()) == min(result.residual, result.total_profit)
    sim.agree(result.account, *result.profits)


@pytest.fixture
def crash():
    """docs/loss-policies.md's crash under PROFIT: A (1,000) long 3 ETH from B
    (4,000) and 2 from C (3,000) at 2,000; D (1,000) flat; the vault holds 100.
    ETH at 1,700: A's equity is -500, R = 400."""
    sim = Mirror.in_process(6, policies=PROFIT_BOTH, vault_assets=100 * 10**6, markets=((2_000, NO_FEES), MARKETS[1]))
    u = sim.u
    with sim.active():
        a, b, c, d = (key(20 + i) for i in range(4))
        for k, amount in ((a, 1_000), (b, 4_000), (c, 3_000), (d, 1_000)):
            sim.fund(k.address, amount * u)
        sim.trade(a, b, ETH, 3 * WAD, 2_000 * u)
        sim.trade(a, c, ETH, 2 * WAD, 2_000 * u)
        sim.set_mark(ETH, 1_700 * u)
        sim.fund(sim.keeper, 10_000 * u)  # the keeper takes the position over at the mark: it needs margin
    return sim, a, b, c, d


def test_profit__worked_example__pro_rata_to_profit(crash):
    """B's profit 900, C's 600: P = 1,500 > R = 400, so B pays 240 and C 160, exactly
    R; their positions stay open. The keeper then takes A over at the mark and the
    vault pays the last 100."""
    sim, a, b, c, d = crash
    u = sim.u
    with sim.active():
        sent, result = sim.clawback(a, ETH)
        assert_matches_model(sim, sent, result)
        assert result.charged == {b.address: 240 * u, c.address: 160 * u}
        # Out of their profit: collateral as it was, cost basis up by the charge, equity down by it.
        assert sim.ch.collateral(b.address) == 4_000 * u and sim.ch.collateral(c.address) == 3_000 * u
        assert tuple(sim.ch.positions(b.address, ETH))[:2] == (-3 * WAD, -5_760 * u)  # nothing closed
        assert sim.ch.health(b.address).equity == 4_660 * u and sim.ch.health(c.address).equity == 3_440 * u
        assert sim.ch.health(a.address).equity == -100 * u  # what the vault covers
        liq = sim.liquidate(a, ETH, by_keeper=True)
        assert (liq.bankrupt.deficit, liq.bankrupt.insurance_paid, liq.bankrupt.residual) == (100 * u, 100 * u, 0)
        assert liq.recorded is None and sim.ch.bad_debt() == 0
        assert sim.ch.collateral(d.address) == 1_000 * u  # flat: pays nothing


def test_profit__the_audit_replays_the_run_and_names_an_account_left_out(crash):
    """The audit rebuilds a clawback from the logs alone: the whole run passes; a
    keeper that lists C alone (B, in profit, left out) is named."""
    sim, a, b, c, d = crash
    with sim.active():
        with sim.anchor():
            sim.clawback(a, ETH)
            sim.liquidate(a, ETH, by_keeper=True)
            verdict, _ = run_audit(sim.engine, sim.d.addresses())
            assert verdict.ok and verdict.checked["profit"] >= 3, verdict.rows()
        sim.clawback(a, ETH, [c.address])
        verdict, _ = run_audit(sim.engine, sim.d.addresses())
        assert not verdict.ok and f"passed over {b.address}" in verdict.failures["profit"][0]


def test_profit__bankrupt_position_is_the_keepers__no_take_over_before_the_clawback(crash):
    """While A's equity is negative nobody but a keeper may take it over: B, in
    profit, cannot close its own share of the loss away by liquidating A."""
    sim, a, b, c, d = crash
    with sim.active():
        with boa.env.prank(b.address), boa.reverts("clearing: bankrupt, keepers only"):
            sim.ch.liquidate(a.address, ETH, 10**30, False)
        with pytest.raises(ModelError, match="keepers only"):
            sim.model.liquidate(a.address, ETH, 10**30, b.address)


def test_profit__a_longer_or_shorter_list__the_payers_cover_the_residual_anyway(crash):
    """Duplicates and out-of-order entries are skipped (ORDER), the bankrupt account
    and flat accounts too (SIDE). A keeper that leaves C out makes B pay all of R
    (up to B's profit): what is charged never depends on who was left out."""
    sim, a, b, c, d = crash
    with sim.active():
        listed = sorted([a.address, b.address, d.address], key=lambda x: int(x, 16))
        listed = listed + [listed[0]]  # one more, out of order
        sent, result = sim.clawback(a, ETH, listed)
        assert_matches_model(sim, sent, result)
        assert result.charged == {b.address: 400 * sim.u}
        reasons = {str(e.counterparty): e.reason for e in by_name(sent, "CandidateSkipped")}
        assert reasons[a.address] in (1, 5) and reasons[d.address] in (1, 5)
        assert sorted(r for _, r in result.skipped) == sorted([1, 1, 5])


def test_profit__profit_below_the_residual__all_of_it_then_bad_debt(crash):
    """ETH at 1,600: A's equity is -1,000, R = 900. A keeper that lists C alone
    (profit 800 < R) charges C all of its profit and no more; the 100 left is
    logged bad debt at the keeper's liquidation, which is never blocked (the audit
    names B, left out while in profit)."""
    sim, a, b, c, d = crash
    u = sim.u
    with sim.active():
        sim.set_mark(ETH, 1_600 * u)
        sent, result = sim.clawback(a, ETH, [c.address])
        assert_matches_model(sim, sent, result)
        assert result.charged == {c.address: 800 * u}
        liq = sim.liquidate(a, ETH, by_keeper=True)
        assert (liq.bankrupt.insurance_paid, liq.bankrupt.residual) == (100 * u, 100 * u)
        assert liq.recorded.loss_policy == POLICY_PROFIT and liq.recorded.residual == 100 * u
        assert sim.ch.bad_debt() == 100 * u


def test_profit__a_second_clawback_finds_the_profit_already_taken(crash):
    """ETH at 1,600, R = 900, C alone listed: C gives its whole profit (800). A second
    clawback of the same bankruptcy, by a keeper or a rogue deleverager, finds C's
    PnL at zero (the charge came out of its cost basis): nothing more to take."""
    sim, a, b, c, d = crash
    u = sim.u
    with sim.active():
        sim.set_mark(ETH, 1_600 * u)
        sim.clawback(a, ETH, [c.address])
        sent, result = sim.clawback(a, ETH, [c.address])
        assert_matches_model(sim, sent, result)
        assert result.charged == {} and result.skipped == [(c.address, 2)]  # PROFIT: none left
        assert sim.ch.health(c.address).equity == 3_000 * u  # paid 800, once
        evil = key(66).address
        sim.send(sim.admin, sim.d.clearing_house, "set_loss_policy_contract", POLICY_PROFIT, evil)
        with boa.env.prank(evil), boa.reverts("clearing: bad clawback"):
            sim.ch.adl_fill(a.address, c.address, ETH, 1)


def test_profit__nobody_in_profit__logged_bad_debt_and_the_liquidation_goes_on():
    """The empty denominator: B sold A 5 ETH at 2,000 and bought them back from E at
    1,600 (B flat, its gain realised); at 1,700 A is bankrupt and E's short loses
    too. Nobody holds a profit: the clawback charges nothing and the keeper's
    liquidation leaves the residual as logged bad debt."""
    sim = Mirror.in_process(6, policies=PROFIT_BOTH, markets=((2_000, NO_FEES), MARKETS[1]))
    u = sim.u
    with sim.active():
        a, b, e = key(40), key(41), key(42)
        for k, amount in ((a, 1_000), (b, 10_000), (e, 10_000)):
            sim.fund(k.address, amount * u)
        sim.trade(a, b, ETH, 5 * WAD, 2_000 * u)
        sim.set_mark(ETH, 1_600 * u)
        sim.trade(b, e, ETH, 5 * WAD, 1_600 * u)
        sim.set_mark(ETH, 1_700 * u)
        sent, result = sim.clawback(a, ETH, sorted([b.address, e.address], key=lambda x: int(x, 16)))
        assert_matches_model(sim, sent, result)
        assert result.profits == {} and by_name(sent, "ClawbackRun")[0].profit == 0
        assert dict(result.skipped) == {b.address: 1, e.address: 2}  # flat; losing
        sim.fund(sim.keeper, 10_000 * u)
        liq = sim.liquidate(a, ETH, by_keeper=True)
        assert liq.recorded.loss_policy == POLICY_PROFIT and liq.recorded.residual == 500 * u


def test_profit__longs_in_profit_pay_too():
    """Any position in profit pays, on either side: D bought 4 ETH at 1,500 and is in
    profit (800) at 1,700 beside B's short (1,500) while A's long from 2,000 is
    bankrupt (R = 500, empty vault)."""
    sim = Mirror.in_process(6, policies=PROFIT_BOTH, markets=((2_000, NO_FEES), MARKETS[1]))
    u = sim.u
    with sim.active():
        a, b, d = key(50), key(51), key(52)
        for k, amount in ((a, 1_000), (b, 10_000), (d, 10_000)):
            sim.fund(k.address, amount * u)
        sim.set_mark(ETH, 1_500 * u)
        sim.trade(d, sim.mm, ETH, 4 * WAD, 1_500 * u)
        sim.set_mark(ETH, 2_000 * u)
        sim.trade(a, b, ETH, 5 * WAD, 2_000 * u)
        sim.set_mark(ETH, 1_700 * u)
        sent, result = sim.clawback(a, ETH)
        assert_matches_model(sim, sent, result)
        assert result.profits == {x: p for x, p in ((b.address, 1_500 * u), (d.address, 800 * u))
                                  if x in result.profits} and len(result.profits) == 2
        assert sum(result.charged.values()) == 500 * u


def test_profit__bad_calls__revert_with_reason(crash):
    sim, a, b, c, d = crash
    with sim.active():
        adl, profit = sim.adl, sim.profit
        with boa.env.prank(b.address), boa.reverts("adl: not keeper"):
            profit.clawback(a.address, ETH, [b.address])
        with boa.env.prank(sim.keeper):
            with boa.reverts("adl: unknown market"):
                profit.clawback(a.address, 7, [b.address])
            with boa.reverts("adl: no position"):
                profit.clawback(d.address, ETH, [b.address])
            with boa.reverts("adl: no candidates"):
                profit.clawback(a.address, ETH, [])
            with boa.reverts("adl: not bankrupt"):
                profit.clawback(b.address, ETH, [a.address])
            with boa.reverts("adl: wrong loss policy"):
                adl.deleverage(a.address, ETH, [b.address])
        sim.set_loss_policy(1, POLICY_EQUITY)
        with boa.env.prank(sim.keeper), boa.reverts("adl: wrong loss policy"):
            profit.clawback(a.address, 1, [b.address])


def test_profit__a_rogue_deleverager_is_bounded_by_the_clearing_house(crash):
    """The clearing house checks every charge itself: never from a flat account,
    never more than the payer's PnL in the market, never beyond A's shortfall R (taken at
    the first charge of a transaction, computed again in the next)."""
    sim, a, b, c, d = crash
    u = sim.u
    with sim.active():
        evil = key(66).address
        sim.send(sim.admin, sim.d.clearing_house, "set_loss_policy_contract", POLICY_PROFIT, evil)
        with boa.env.prank(evil):
            with boa.reverts("clearing: bad clawback"):
                sim.ch.adl_fill(a.address, d.address, ETH, 1)  # D has no position
            with boa.reverts("clearing: bad clawback"):
                sim.ch.adl_fill(a.address, c.address, ETH, 600 * u + 1)  # beyond C's profit
            with boa.reverts("clearing: bad clawback"):
                sim.ch.adl_fill(a.address, b.address, ETH, 400 * u + 1)  # beyond R
            sim.ch.adl_fill(a.address, b.address, ETH, 400 * u)  # exactly R: allowed
            # R is taken at the first charge of a transaction (these calls share one:
            # titanoboa keeps transient storage until told): nothing of it is left.
            with boa.reverts("clearing: bad clawback"):
                sim.ch.adl_fill(a.address, c.address, ETH, 1)
            boa.env.evm.vm.state.clear_transient_storage()  # the next transaction
            with boa.reverts("clearing: not bankrupt"):
                sim.ch.adl_fill(a.address, c.address, ETH, 1)  # R computed again: nothing to place


@pytest.mark.parametrize("decimals,n", [(6, 2), (6, 10), (6, 100), pytest.param(6, 1000, marks=pytest.mark.ci_scale),
                                         (18, 2), (18, 10), (18, 100)], ids=lambda v: str(v))
def test_profit__population__each_charge_within_one_unit_of_the_exact_share(populations, decimals, n):
    """N accounts (the EQUITY tests' populations, both sides, two markets), one more
    long at 9x gaps 15 %: every account in profit in ETH pays R * profit / P to within
    one unit, the charges add up to R, and the chain equals the model."""
    with populations[decimals].at(n) as sim:
        sim.set_loss_policy(ETH, POLICY_PROFIT)
        victim = sim.victim(501, ETH, 2_000 * sim.u, 900, long=True)
        sim.move(ETH, -1_500)
        sent, result = sim.clawback(victim, ETH)
        assert_matches_model(sim, sent, result)
        assert len(result.charged) >= min(n, 2) // 2
        sim.fund(sim.keeper, 10**6 * sim.u)
        liq = sim.liquidate(victim, ETH, by_keeper=True)
        left = max(result.residual - result.total_profit, 0)  # nothing here: the profits cover R
        assert (liq.bankrupt.residual if liq.bankrupt else 0) == left == 0
        assert sim.ch.collateral(victim.address) == 0
