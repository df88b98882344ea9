"""No escape by taking the bankrupt position over: under every policy the
payers of a residual and their shares are fixed by the state before the
bankrupt position moves.

The book (one per policy and decimals): V is long 5 ETH at about 9x, its only
counterparties S1 (short 3) and S2 (short 2); B is long 1 against S3 (short
1). The mark gaps 15 % and V's deficit exceeds the empty vault. The same
bankruptcy is then liquidated by different takers: the neutral liquidator L,
S1 (on the paying side under OPEN_INTEREST), B (on the bankrupt side), and
split across several takers. What S1, S2 and S3 pay (the fall of their equity
as the views show it, pending charges included) must be what they pay when L
liquidates, within one unit; nothing becomes bad debt.

Seen on main before the fix (OPEN_INTEREST, residual 500): S1 liquidating paid
0 and left S2 500; S1 and S2 each taking their own share left 500 of bad debt.
"""

from __future__ import annotations

import boa
import pytest

from perpclear.model import FUNDING_SCALE, WAD, ModelError
from perpclear.units import POLICIES, POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_PROFIT

from harness import Mirror, by_name, key

V, S1, S2, S3, B, L2 = 9_300_001, 9_300_002, 9_300_003, 9_300_004, 9_300_005, 9_300_006
ETH = 0
HUGE = 10**30  # "everything" as a liquidation size


def build(decimals, policy):
    sim = Mirror.in_process(decimals, policies=(policy, POLICY_EQUITY))
    u = sim.u
    with sim.active():
        keys = {i: key(i) for i in (V, S1, S2, S3, B, L2)}
        for i in (S1, S2, S3, B, L2):
            sim.fund(keys[i].address, 20_000 * u)
        sim.fund(keys[V].address, 1_100 * u)
        price = sim.model.markets[ETH].price
        sim.trade(keys[V], keys[S1], ETH, 3 * WAD, price)
        sim.trade(keys[V], keys[S2], ETH, 2 * WAD, price)
        sim.trade(keys[B], keys[S3], ETH, WAD, price)
        sim.move(ETH, -1_500)
        assert sim.ch.health(keys[V].address).equity < 0
    return sim, {i: k.address for i, k in keys.items()}


@pytest.fixture(scope="module")
def books():
    built = {}

    def get(decimals, policy):
        if (decimals, policy) not in built:
            built[decimals, policy] = build(decimals, policy)
        return built[decimals, policy]

    return get


def charges(sim, a, takes):
    """Runs the liquidations ``takes`` [(taker address, size)] on V and returns
    what each of S1, S2, S3 paid (equity before - equity after) and the logs of
    the last liquidation."""
    payers = (a[S1], a[S2], a[S3])
    before = {p: sim.ch.health(p).equity for p in payers}
    for taker, size in takes:
        logs = sim.liquidate(a[V], ETH, size, by=taker).events
    for p in list(payers) + [a[V], a[B], sim.liquidator]:
        assert tuple(sim.ch.health(p)) == tuple(sim.model.health(p).__dict__.values()), p
    assert sim.ch.positions(a[V], ETH).size == 0 and sim.ch.collateral(a[V]) == 0
    return {p: before[p] - sim.ch.health(p).equity for p in payers}, logs


def neutral(sim, a):
    with sim.anchor():
        paid, _ = charges(sim, a, [(sim.liquidator, HUGE)])
        assert sim.ch.bad_debt() == 0
    return paid


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("policy", ["EQUITY", "OPEN_INTEREST"])
@pytest.mark.parametrize("takers", ["paying_side", "bankrupt_side", "split_neutral", "split_then_paying_side",
                                    "split_paying_sides"])
def test_takeover__never_lowers_what_a_payer_pays(books, decimals, policy, takers):
    sim, a = books(decimals, POLICIES[policy])
    with sim.active():
        expected = neutral(sim, a)
        assert all(v > 0 for v in expected.values()) or policy == "EQUITY"
        plan = {
            "paying_side": [(a[S1], HUGE)],
            "bankrupt_side": [(a[B], HUGE)],
            "split_neutral": [(sim.liquidator, 2 * WAD), (a[L2], HUGE)],
            "split_then_paying_side": [(sim.liquidator, 2 * WAD), (a[S1], HUGE)],
            # S1 then S2 each take their own share: S1 may not take part of a
            # bankrupt position (the rest would no longer count it as a payer).
            "split_paying_sides": [(a[S1], 3 * WAD)],
        }[takers]
        with sim.anchor():
            if takers == "split_paying_sides":
                with boa.env.prank(a[S1]), boa.reverts("clearing: bankrupt, take it whole"):
                    sim.ch.liquidate(a[V], ETH, 3 * WAD, False)
                with pytest.raises(ModelError, match="clearing: bankrupt, take it whole"):
                    sim.model.liquidate(a[V], ETH, 3 * WAD, a[S1])
                return
            paid, _ = charges(sim, a, plan)
            for payer, amount in paid.items():
                assert abs(amount - expected[payer]) <= 1, (takers, payer, amount, expected[payer])
            assert sim.ch.bad_debt() == 0 == sim.model.bad_debt
            sim.check()


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
def test_takeover__open_interest_shares_are_the_state_before(books, decimals):
    """Under OPEN_INTEREST each short pays ceil(|s| * ceil(R * 1e36 / OI) / 1e36), OI the
    open interest before the liquidation, whoever takes the position over."""
    sim, a = books(decimals, POLICY_OPEN_INTEREST)
    with sim.active(), sim.anchor():
        oi = sim.lens.markets(ETH).long_open_interest
        assert oi == 6 * WAD
        paid, logs = charges(sim, a, [(a[S1], HUGE)])
        (social,) = by_name(logs, "LossSocialized")
        assert social.basis == oi
        per_contract = -(-social.residual * FUNDING_SCALE // oi)
        assert social.rate == per_contract and social.booked == social.residual
        # S1 closed its whole short by taking the position over: charged in the same transaction
        (direct,) = [e for e in by_name(logs, "FundingSettled") if e.account == a[S1]]
        assert direct.amount == -(-3 * WAD * per_contract // FUNDING_SCALE)
        for payer, size in ((a[S1], 3), (a[S2], 2), (a[S3], 1)):
            assert paid[payer] == -(-size * WAD * per_contract // FUNDING_SCALE), payer
        assert sum(paid.values()) >= social.residual


def test_takeover__adl_market_bankrupt_position_is_the_keepers(books):
    """Under ADL nobody but a keeper takes a bankrupt position over (the payers are
    the ranked counterparties the deleverager closes)."""
    sim, a = books(6, POLICY_ADL)
    with sim.active(), sim.anchor():
        for taker in (a[S1], a[B], sim.liquidator):
            with boa.env.prank(taker), boa.reverts("clearing: bankrupt, keepers only"):
                sim.ch.liquidate(a[V], ETH, HUGE, False)


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
def test_takeover__profit_payers_are_fixed_before_the_position_moves(books, decimals):
    """Under PROFIT nobody but a keeper takes a bankrupt position over: S1 (in
    profit) cannot liquidate V to step out of its share. The keeper's clawback
    charges S1, S2 and S3 (all in profit) while V's position is still open; its
    take-over afterwards, whole or in parts, changes nothing of what they paid."""
    sim, a = books(decimals, POLICY_PROFIT)
    with sim.active(), sim.anchor():
        for taker in (a[S1], a[B], sim.liquidator):
            with boa.env.prank(taker), boa.reverts("clearing: bankrupt, keepers only"):
                sim.ch.liquidate(a[V], ETH, HUGE, False)
        payers = (a[S1], a[S2], a[S3])
        before = {p: sim.ch.health(p).equity for p in payers}
        _, result = sim.clawback(a[V], ETH)
        assert set(result.charged) == set(payers) and sum(result.charged.values()) == result.residual
        charged = {p: before[p] - sim.ch.health(p).equity for p in payers}
        assert charged == result.charged
        sim.fund(sim.keeper, 20_000 * sim.u)
        sim.liquidate(a[V], ETH, 2 * WAD, by_keeper=True)
        sim.liquidate(a[V], ETH, HUGE, by_keeper=True)
        assert sim.ch.positions(a[V], ETH).size == 0 and sim.ch.collateral(a[V]) == 0
        assert {p: before[p] - sim.ch.health(p).equity for p in payers} == charged
        assert sim.ch.bad_debt() == 0 == sim.model.bad_debt
