"""EQUITY policy: fairness against the exact reference model, extremes, empty denominator.

Semantics under test (contracts/modules/loss_equity.vy, model.socialize_equity):
a residual R is charged to every account as r * e_i with r = (R + 1) / D and
D = sum of ALL accounts' exact equity at the current marks (negative equity
included), settled lazily in one step per account; a negative share is never
paid out: it goes to the insurance fees (no account gains from a socialization);
``health(a).equity`` shows pending charges at once. Chain vs model: within one
unit per account (1e36 fixed point and a conservative D on chain).

Every chain transaction made through the harness is followed by the ledger
identity check (docs/loss-policies.md, "Ledger").
"""

import copy
import math
from fractions import Fraction

import pytest

from perpclear.model import WAD
from perpclear.units import POLICY_EQUITY, equity_scale

from harness import ETH, HUGE, Mirror, SCALE, SOL, by_name, key

VICTIM = 9_000_001
PRECISION = 10**60
DECIMALS = [6, 18]


def all_accounts(sim, members, *extra):
    return list(dict.fromkeys([*members, sim.mm.address, sim.liquidator, *extra]))


def check_pending_views(sim, accounts):
    """health() already includes every pending charge: chain equals model within one unit."""
    for a in accounts:
        chain, model = sim.ch.health(a), sim.model.health(a)
        assert abs(chain.equity - model.equity) <= 1, (a, chain.equity, model.equity)
        assert (chain.maintenance, chain.initial) == (model.maintenance, model.initial)


def settle_everyone(sim, accounts, exact_charges, rate=None):
    """Settles every account once; per-account share vs the model's exact share.

    A positive share is charged; a negative one (an underwater account's) is
    withheld and goes to the insurance fees: no account's collateral rises.
    Returns the sum of the shares as booked (charges less withheld shares),
    which is what ``loss_receivable`` counts. ``exact_charges`` maps an account
    to its exact rational share (sum over the pending socializations).
    """
    total = 0
    for a in accounts:
        exact = exact_charges.get(a, Fraction(0))
        fees = sim.ch.insurance_fees()
        charge, model_charge, _ = sim.settle(a)
        withheld = sim.ch.insurance_fees() - fees
        assert charge >= 0 and (charge == 0 or withheld == 0), (a, charge, withheld)
        share = charge - withheld
        # within one unit of the exact rational share, and rounding favours the system
        assert abs(share - exact) <= 1, (a, share, float(exact))
        assert abs(charge - model_charge) <= 1, (a, charge, model_charge)
        if rate is not None and exact != 0:
            # the same rate for everyone: share / equity = r within 1 unit / equity,
            # the equity being the model's basis at the socialization (exact / r)
            basis = exact / rate
            assert abs(Fraction(share) / basis - rate) <= Fraction(1) / abs(basis), a
        total += share
    return total


@pytest.mark.parametrize("decimals,n", [(6, 2), (6, 10), (6, 100), pytest.param(6, 1000, marks=pytest.mark.ci_scale),
                                         (18, 2), (18, 10), (18, 100)],
                         ids=lambda v: str(v))
def test_equity__charges_equal_the_exact_model_for_every_account(populations, decimals, n):
    """N accounts (both sides, 1x-8x, two markets for a third), funding, a gap: one
    account goes bankrupt beyond a small vault. Every charge equals r * e_i of the
    exact model within one unit, everyone pays the same rate, the residual is
    covered, and what is left of loss_receivable is only the rounding dust."""
    pop = populations[decimals]
    with pop.at(n) as sim:
        u = sim.u
        members = pop.members[:n]
        with sim.active():
            sim.fund_vault(7 * u)
            victim = sim.victim(VICTIM, ETH, 5_000 * u + 123, 950).address
            # funding runs for an hour, then the gap (SOL moves too)
            import boa

            with boa.env.prank(sim.keeper):
                sim.ch.set_funding_rate(ETH, 3 * 10**9)
            sim.sync()
            sim.model.set_funding_rate(ETH, 3 * 10**9)
            boa.env.time_travel(seconds=3_600)
            sim.sync()
            sim.check()
            sim.move(SOL, 700)
            sim.move(ETH, -1_500)
            accounts = all_accounts(sim, members, victim)

            liq = sim.liquidate(victim, ETH)
            b = liq.model.bankruptcy
            assert liq.bankrupt is not None and b is not None
            assert (liq.bankrupt.deficit, liq.bankrupt.insurance_paid, liq.bankrupt.residual) == (
                b.deficit, b.insurance_paid, b.residual)
            assert b.insurance_paid == 7 * u and b.residual > 1_000 * u
            s = liq.socialized
            assert s is not None and liq.recorded is None
            assert s.loss_policy == POLICY_EQUITY and s.residual == b.residual
            assert s.booked == b.booked == b.residual
            # D on chain is conservative (never above the exact sum), r rounded up
            assert s.basis <= b.basis, (s.basis, float(b.basis))
            assert b.basis - s.basis <= 4 * len(accounts) + 10, (s.basis, float(b.basis))
            assert Fraction(s.rate, SCALE) >= b.rate
            assert s.index_before == SCALE and s.index_after == sim.ch.scale()
            # some accounts are underwater at this gap: their share is negative, withheld
            negative = [a for a in accounts if b.charges.get(a, 0) < 0]
            if n >= 100:
                assert negative, "the population should include underwater accounts"

            check_pending_views(sim, accounts)
            total = settle_everyone(sim, accounts, b.charges, b.rate)

            assert total >= b.residual, (total, b.residual)
            receivable = sim.ch.loss_receivable()
            assert -(len(accounts) + 1) <= receivable <= 0, (receivable, len(accounts))
            assert receivable == b.residual - total
            assert sim.ch.bad_debt() == 0
            sim.check_accounts(accounts)
            print(f"\n[equity n={n} dec={decimals}] residual={b.residual} D_exact-D_chain="
                  f"{float(b.basis - s.basis):.1f} sum charges={total} dust={-receivable} underwater={len(negative)}")


def gap_with_underwater_book(decimals, target, victim_margin=1_000):
    """A book whose whole equity D is about R, or <= 0, when the victim goes.

    By the ledger identity, at the socialization (V's collateral credited to 0)
        D = token balance before the liquidation - owed fees - funding pool
            + bad debt + loss receivable + V's deficit,
    so D >= R while the house holds its owed fees: the sum of equity can only
    come close to R when the winners have taken their tokens out, and only
    drop to <= 0 when the owed fees exceed the house's balance plus V's deficit.
    Victim V long 9.5x and B long 8x against the maker; the mark gaps 25 %
    down (B is deep underwater: its negative equity counts in D); the maker
    closes its profitable short against C at the new mark and withdraws so
    much that D at V's liquidation is ``target(R)`` (the exact model's D).
    Returns (sim, victim, accounts).
    """
    sim = Mirror.in_process(decimals, liquidator_margin=1_000, mm_margin=20_000)
    u = sim.u
    with sim.active():
        victim = sim.victim(VICTIM, ETH, victim_margin * u, 950).address
        b = sim.victim(VICTIM + 1, ETH, 10_000 * u, 800).address
        c = key(VICTIM + 2)
        sim.fund(c.address, 8_000 * u)
        sim.move(ETH, -2_500)
        mm_size = -sim.ch.positions(sim.mm.address, ETH)[0]
        sim.trade(sim.mm, c, ETH, mm_size, sim.model.markets[ETH].price)
        bankruptcy = copy.deepcopy(sim.model).liquidate(victim, ETH, HUGE, sim.liquidator).bankruptcy
        take = math.ceil(bankruptcy.basis - target(bankruptcy.residual))
        sim.withdraw(sim.mm.address, take)
        assert sim.model.exact_equity(b) < 0
        accounts = [victim, b, c.address, sim.mm.address, sim.liquidator]
    return sim, victim, accounts


@pytest.mark.parametrize("decimals", DECIMALS, ids=["dec6", "dec18"])
@pytest.mark.parametrize("case", ["capped", "just_below"])
def test_equity__residual_close_to_all_equity(decimals, case):
    """Residual ~ D (the winners withdrew). Capped (D = R + 1): r = MAX_RATE, booked = floor(r * D) - 1 < R and the
    rest stays bad debt; just below (D = 1.01 R): booked = R. Nothing reverts, and
    every charge still matches the model within one unit."""
    # capped: D = R + 1, so (R + 1) / D = 1 > MAX_RATE; just below: D = 1.01 R
    target = (lambda r: r + 1) if case == "capped" else (lambda r: r * Fraction(101, 100))
    sim, victim, accounts = gap_with_underwater_book(decimals, target)
    with sim.active():
        liq = sim.liquidate(victim, ETH)
        b, s = liq.model.bankruptcy, liq.socialized
        assert s is not None
        assert sim.ch.positions(victim, ETH)[0] == 0 and sim.ch.collateral(victim) == 0
        if case == "capped":
            assert s.rate == SCALE - SCALE // 1_000_000 and b.rate == 1 - Fraction(1, 10**6)
            assert s.booked < s.residual
            assert abs(s.booked - b.booked) <= 2, (s.booked, b.booked)
            assert liq.recorded is not None and liq.recorded.residual == s.residual - s.booked
            assert sim.ch.bad_debt() == s.residual - s.booked
            assert abs(sim.ch.bad_debt() - sim.model.bad_debt) <= 2
        else:
            assert s.booked == b.booked == b.residual and liq.recorded is None
            assert Fraction(98, 100) < b.rate < 1
        # K on chain is the model's to 36 digits (the rate rounded up, the products floored)
        k_chain, k_model = equity_scale(sim.ch.scale()), sim.model.equity_scale
        assert k_chain <= k_model and k_model - k_chain < k_model / 10**34, float(k_model - k_chain)
        check_pending_views(sim, accounts)
        total = settle_everyone(sim, accounts, b.charges, b.rate)
        assert total >= s.booked
        receivable = sim.ch.loss_receivable()
        assert -(len(accounts) + 1) <= receivable <= 0, receivable
        sim.check_accounts(accounts)


@pytest.mark.parametrize("decimals", DECIMALS, ids=["dec6", "dec18"])
def test_equity__no_denominator_records_the_residual_and_liquidates(decimals):
    """D <= 0 (everyone else underwater, the winner gone with the tokens; reachable only
    when the owed fees exceed the house's balance plus the deficit, so a small
    victim here): nothing booked, no index moves, the residual is recorded as bad
    debt, and the liquidation itself succeeds."""
    sim, victim, accounts = gap_with_underwater_book(decimals, lambda r: -1, victim_margin=30)
    with sim.active():
        others = sum(sim.model.exact_equity(a) for a in sim.model.accounts() if a != victim)
        assert others <= 0, float(others)
        liq = sim.liquidate(victim, ETH)
        b = liq.model.bankruptcy
        assert liq.socialized is None
        assert liq.recorded is not None
        assert liq.recorded.residual == liq.bankrupt.residual == b.residual > 0
        assert liq.recorded.loss_policy == POLICY_EQUITY
        assert sim.ch.bad_debt() == b.residual == sim.model.bad_debt
        assert sim.ch.scale() == SCALE and sim.ch.loss_receivable() == 0
        assert sim.ch.positions(victim, ETH)[0] == 0 and sim.ch.collateral(victim) == 0
        for a in accounts:
            charge, model_charge, _ = sim.settle(a)
            assert charge == model_charge == 0


@pytest.mark.parametrize("decimals", DECIMALS, ids=["dec6", "dec18"])
@pytest.mark.parametrize("then", ["rebound", "top_up", "liquidated"])
def test_equity__no_account_gains_from_a_socialization(decimals, then):
    """U is underwater (8x long, 25 % gap) when V goes bankrupt: U's share r * e_U
    is negative. Whether the mark then rebounds, U tops up, or U is liquidated
    (not bankrupt after the rebound), U's collateral never rises for it: the
    share goes to the insurance fees, in the same ledger, and on to the vault
    with ``sweep_fees``; the solvent accounts paid R + 1 plus that share."""
    sim = Mirror.in_process(decimals, liquidator_margin=20_000, mm_margin=20_000)
    u = sim.u
    with sim.active():
        victim = sim.victim(VICTIM, ETH, 1_000 * u, 950).address
        under = sim.victim(VICTIM + 1, ETH, 10_000 * u, 800).address
        sim.move(ETH, -2_500)
        assert sim.model.exact_equity(under) < 0
        liq = sim.liquidate(victim, ETH)
        b = liq.model.bankruptcy
        assert liq.socialized is not None and b.booked == b.residual > 0
        share = b.charges[under]
        assert share < -1, float(share)
        stored, fees = sim.ch.collateral(under), sim.ch.insurance_fees()
        # the views never show the negative share as collateral
        assert sim.lens.pending_loss_charge(under) == 0
        if then == "rebound":
            sim.move(ETH, 3_500)
            charge, model_charge, logs = sim.settle(under)
        elif then == "top_up":
            sim.mint(under, 5_000 * u)
            logs = sim.deposit(under, 5_000 * u)
            stored += 5_000 * u
            charge, model_charge = by_name(logs, "LossSettled")[0].charge, 0
        else:
            sim.move(ETH, 2_000)
            assert 0 < sim.model.health(under).equity < sim.model.health(under).maintenance
            logs = sim.liquidate(under, ETH).events
            [charge] = [e.charge for e in by_name(logs, "LossSettled") if e.account == under]
            model_charge = 0
        [settled] = [e for e in by_name(logs, "LossSettled") if e.account == under]
        assert charge == model_charge == 0
        assert abs(settled.to_insurance + share) <= 1, (settled.to_insurance, float(share))
        assert sim.loss_charged(under) == 0
        if then != "liquidated":
            assert sim.ch.collateral(under) == stored
        assert sim.ch.insurance_fees() == sim.model.insurance_fees == fees + settled.to_insurance
        # everyone else settles: what they paid covers R and the withheld share
        others = [a for a in b.charges if a != under]
        for a in others:
            sim.settle(a)
        paid = sum(sim.loss_charged(a) for a in others)
        assert paid >= b.residual + settled.to_insurance
        assert -3 <= sim.ch.loss_receivable() <= 0
        vault, fees = sim.vault.totalAssets(), sim.ch.insurance_fees()
        import boa

        with boa.env.prank(sim.keeper):
            sim.ch.sweep_fees()
        assert sim.vault.totalAssets() == vault + fees


@pytest.mark.parametrize("decimals", DECIMALS, ids=["dec6", "dec18"])
def test_equity__dust_residual_of_one_unit(populations, decimals):
    """The vault covers all but one unit: R = 1. Every positive account pays at most one
    unit (the explicit dust), negative ones are credited nothing, the model agrees."""
    pop = populations[decimals]
    with pop.at(10) as sim:
        u = sim.u
        members = pop.members[:10]
        victim = sim.victim(VICTIM, ETH, 3_000 * u, 950).address
        sim.move(ETH, -1_500)
        preview = copy.deepcopy(sim.model).liquidate(victim, ETH, HUGE, sim.liquidator).bankruptcy
        sim.fund_vault(preview.deficit - 1)
        liq = sim.liquidate(victim, ETH)
        b, s = liq.model.bankruptcy, liq.socialized
        assert b.residual == liq.bankrupt.residual == 1
        assert s.booked == 1 and s.residual == 1
        accounts = all_accounts(sim, members, victim)
        check_pending_views(sim, accounts)
        total = settle_everyone(sim, accounts, b.charges, b.rate)
        assert total >= 1
        for a in accounts:
            # no one is credited out of dust: a negative share of 2 / D rounds to 0
            assert 0 <= sim.loss_charged(a) <= math.ceil(b.charges.get(a, 0)), a
        receivable = sim.ch.loss_receivable()
        assert -(len(accounts) + 1) <= receivable <= 0


@pytest.mark.parametrize("decimals,count", [
    (6, 60), pytest.param(6, 300, marks=pytest.mark.ci_scale),
    pytest.param(18, 120, marks=pytest.mark.ci_scale)],
    ids=["dec6-60", "dec6-300", "dec18"])
def test_equity__hundreds_of_tiny_bankruptcies_at_one_price(populations, decimals, count):
    """``count`` tiny accounts go bankrupt one after the other at one price (the Liquity
    precision trap). Each is socialized; untouched accounts then settle all of them in
    one step with no drift beyond one unit vs the model, and K stays above its floor.

    The model's rationals are rounded to 1/10**60 after each event (``ClearingModel.precision``,
    its default): exact, they grow without bound (see the test below)."""
    pop = populations[decimals]
    with pop.at(10) as sim:
        u = sim.u
        members = pop.members[:10]
        victims = []
        for i in range(count):
            trader = key(8_000_000 + i)
            sim.fund(trader.address, 3 * u + i, check=False)
            sim.open(trader, ETH, (3 * u + i) * 9 * WAD // sim.model.markets[ETH].price, check=False)
            victims.append(trader.address)
        sim.check()
        sim.move(ETH, -1_500)
        exact = {}
        booked = 0
        scales = []
        for v in victims:
            liq = sim.liquidate(v, ETH)
            b = liq.model.bankruptcy
            assert b is not None and b.residual > 0 and liq.socialized.booked == b.booked == b.residual
            booked += b.booked
            for a, c in b.charges.items():
                exact[a] = exact.get(a, Fraction(0)) + Fraction(round(c * PRECISION), PRECISION)
            scales.append(sim.ch.scale())
        assert scales == sorted(scales, key=equity_scale, reverse=True)
        # K on chain tracks the model's product: never above it (rates rounded up, D
        # conservative by a few units, K floored), and within 1e-15 of it after all the events
        k_chain = equity_scale(sim.ch.scale())
        assert k_chain <= sim.model.equity_scale + Fraction(1, 10**40)
        assert sim.model.equity_scale - k_chain < Fraction(1, 10**15), float(sim.model.equity_scale - k_chain)
        accounts = all_accounts(sim, members)
        # the liquidator is settled at each liquidation it makes: see the whale test below
        check_pending_views(sim, [a for a in accounts if a != sim.liquidator])
        # one step per account, whatever the number of pending socializations
        total = 0
        for a in accounts:
            charged_before = sim.loss_charged(a)
            charge, model_charge, logs = sim.settle(a)
            assert len(by_name(logs, "LossSettled")) == 1
            assert abs(charge - model_charge) <= 1
            if a == sim.liquidator:
                # touched (settled) at every liquidation it made: one rounding per settlement
                assert abs(sim.loss_charged(a) - exact[a]) <= count + 1, (sim.loss_charged(a), float(exact[a]))
            else:
                assert charged_before == 0
                # a negative share is withheld for the insurance fees, never credited
                share = charge - by_name(logs, "LossSettled")[0].to_insurance
                assert abs(share - exact[a]) <= 1, (a, share, float(exact[a]), float(share - exact[a]))
            total += charge
        # everything charged since the first of these bankruptcies, the victims' own
        # shares (settled when they were liquidated) and the liquidator's included
        total = sum(sim.loss_charged(a) for a in accounts + victims)
        assert total >= booked
        receivable = sim.ch.loss_receivable()
        # the dust sink: at most one unit per settlement (every account once, every
        # victim once, the liquidator once per liquidation)
        settlements = len(accounts) + len(victims) + count
        assert -(settlements + 1) <= receivable <= 0, (receivable, settlements)
        sim.check_accounts(accounts + victims)
        print(f"\n[tiny x{count} dec={decimals}] booked={booked} K={sim.ch.scale()} dust={-receivable}")


def test_equity__exact_model_replays_a_run_of_socializations(populations):
    """Thirty tiny bankruptcies in a row: the model stays of bounded size, and for the
    first six (as far as fully exact rationals go in reasonable time) an exact
    model (``precision=None``) gives the same pending charge to 1e-50 of a unit."""
    pop = populations[6]
    with pop.at(2) as sim:
        u = sim.u
        victims = []
        for i in range(30):
            trader = key(8_500_000 + i)
            sim.fund(trader.address, 3 * u + i, check=False)
            sim.open(trader, ETH, (3 * u + i) * 9 * WAD // sim.model.markets[ETH].price, check=False)
            victims.append(trader.address)
        sim.move(ETH, -1_500)
        exact = copy.deepcopy(sim.model)
        exact.precision = None
        for k, v in enumerate(victims):
            sim.liquidate(v, ETH)
            size = max(x.denominator.bit_length() for x in [sim.model.equity_scale, *sim.model.loss_pending.values()])
            # a rational model of a 1e27 fixed-point contract needs a few hundred bits at most
            assert size <= 4_096, f"after {k + 1} socializations the model's fractions have {size} bits"
            if k < 6:
                exact.set_time(sim.now)
                exact.liquidate(v, ETH, HUGE, sim.liquidator)
                for account, pending in exact.loss_pending.items():
                    assert abs(pending - sim.model.loss_pending.get(account, 0)) < Fraction(1, 10**50), account
