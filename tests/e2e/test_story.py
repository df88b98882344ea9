"""The whole clearing story, checked unit for unit against the exact model.

Traders deposit and trade ETH-PERP at 2,000; longs pay funding for eight hours;
the price slides to 1,850 and a keeper liquidates an over-levered long partially,
then at 1,740 fully; a gap to 1,550 makes a second long bankrupt: the insurance
vault covers what it holds and the market's EQUITY loss policy socializes the
rest in the same transaction: every account's equity shrinks by the same
fraction, booked at once and settled into each account when it is next touched.

Driven through the tests' harness (``harness.Mirror``), which checks chain and
model after each step. Runs on the embedded chain and, marked ``anvil``, on a
real anvil node.
"""

from fractions import Fraction

import pytest

from perpclear.model import WAD, ceil
from perpclear.units import EQUITY_SCALE, POLICY_EQUITY

from harness import by_name

pytestmark = pytest.mark.anvil

ETH = 0


def test_story__trade_fund_crash_liquidate_bankrupt(mirror, traders, liquidator):
    s, u = mirror, mirror.system.unit
    ch, vault = mirror.ch, mirror.system.vault
    lens = mirror.lens
    alice, bob, carol, dave = traders[:4]

    # Insurers put 50 into the vault; traders and a keeper fund their margin.
    s.fund_vault(50 * u)
    s.fund(alice, 1_100 * u)  # will go 5 ETH long at 2,000: ~9x
    s.fund(bob, 6_000 * u)  # the short side of alice
    s.fund(carol, 720 * u)  # will go 2 ETH long: ~5.5x
    s.fund(dave, 3_000 * u)  # the short side of carol
    s.fund(liquidator, 20_000 * u)
    s.agree(alice, bob, carol, dave, liquidator)

    s.trade(alice, bob, ETH, 5 * WAD, 2_000 * u)
    s.trade(carol, dave, ETH, 2 * WAD, 2_000 * u)
    s.agree(alice, bob, carol, dave)
    assert ch.positions(alice, ETH).size == 5 * WAD
    assert ch.positions(bob, ETH).size == -5 * WAD

    # Longs pay 0.01% of the mark per hour for eight hours.
    s.set_funding_rate(ETH, 10**14 // 3_600)
    s.wait(8 * 3_600)
    s.set_mark(ETH, 2_000 * u)
    collateral_before = s.model.collateral[alice.address]
    sent = s.settle(alice, by=liquidator)[2]
    owed = collateral_before - s.model.collateral[alice.address]  # what the model booked
    s.agree(alice, bob, carol, dave)
    # alice paid 5 ETH * 2,000 * 0.01% * 8 h = ~8
    [settled] = by_name(sent, "FundingSettled")
    assert settled.amount == owed
    assert 79 * u // 10 < owed < 81 * u // 10

    # The price slides to 1,850: alice is below maintenance and is cut partially.
    s.set_mark(ETH, 1_850 * u)
    assert lens.is_liquidatable(alice)
    # The view answers for the current block; the liquidation happens one
    # second of funding later, so it may take a hair more.
    allowed = lens.max_liquidation_size(alice, ETH)
    assert 0 < allowed < 5 * WAD
    liq = s.liquidate(alice, ETH, 5 * WAD, by=liquidator)
    sent, expected = liq.events, liq.model
    s.agree(alice, bob, carol, dave, liquidator)
    event = by_name(sent, "PositionLiquidated")[0]
    assert event.size == expected.size
    assert allowed <= event.size < allowed * 1_001 // 1_000
    assert event.penalty == expected.penalty > 0
    assert not lens.is_liquidatable(alice)  # margin restored, position kept

    # At 1,740 alice is liquidated again, this time of everything left.
    s.set_mark(ETH, 1_740 * u)
    remaining = ch.positions(alice, ETH).size
    assert lens.max_liquidation_size(alice, ETH) == remaining
    liq = s.liquidate(alice, ETH, remaining, by=liquidator)
    sent, expected = liq.events, liq.model
    s.agree(alice, bob, carol, dave, liquidator)
    assert ch.positions(alice, ETH).size == 0
    # Her equity (~36) was below the full penalty (~55): the penalty took it all.
    assert ch.collateral(alice) == 0
    assert expected.penalty < 1_740 * u * 126 // 100 * 250 // 10_000
    assert expected.bankruptcy is None

    # A gap to 1,550: carol's equity is negative; the vault covers what it holds.
    s.set_mark(ETH, 1_550 * u)
    carol_equity = ch.health(carol).equity
    assert carol_equity < 0
    vault_before = s.model.vault_assets
    liq = s.liquidate(carol, ETH, 2 * WAD, by=liquidator)
    sent, expected = liq.events, liq.model
    s.agree(alice, bob, carol, dave, liquidator)
    bankruptcy = expected.bankruptcy
    assert bankruptcy is not None
    # The deficit is her negative equity, plus one more second of funding.
    assert -carol_equity <= bankruptcy.deficit < -carol_equity + u // 1_000
    assert bankruptcy.insurance_paid == vault_before  # the vault is drained
    assert bankruptcy.residual == bankruptcy.deficit - vault_before > 0
    [bankrupt] = by_name(sent, "AccountBankrupt")
    assert (bankrupt.deficit, bankrupt.insurance_paid, bankrupt.residual) == (
        bankruptcy.deficit,
        bankruptcy.insurance_paid,
        bankruptcy.residual,
    )
    [drawn] = by_name(sent, "InsuranceDrawn")
    assert drawn.amount_paid == vault_before
    assert ch.collateral(carol) == 0
    assert vault.totalAssets() == 0

    # The vault (50 + ~105 of liquidation penalties) paid ~155 of carol's ~184;
    # the residual (~28.66) is socialized under EQUITY in the same transaction:
    # r = (R + 1) / D, D the sum of every account's equity (~30,889: the keeper
    # ~18,735, bob ~8,253, dave ~3,901), about 0.093 %. Nothing is left as bad
    # debt; the whole residual is booked as receivable from the accounts.
    assert mirror.system.markets[ETH].loss_policy == POLICY_EQUITY
    assert 28 * u < bankruptcy.residual < 29 * u
    assert by_name(sent, "ResidualRecorded") == []
    [social] = by_name(sent, "LossSocialized")
    assert (social.account, social.loss_policy) == (carol.address, POLICY_EQUITY)
    assert social.residual == social.booked == bankruptcy.booked == bankruptcy.residual
    assert ch.bad_debt() == 0
    assert ch.loss_receivable() == bankruptcy.residual
    # The chain's D never exceeds the exact one (a few units of flooring
    # below it) and its rate (1e27 = 100 %) is rounded up: never below the
    # model's, and equal to it to nine significant digits.
    assert bankruptcy.basis - 10 <= social.basis <= bankruptcy.basis
    assert social.rate == -(-(bankruptcy.residual + 1) * EQUITY_SCALE // social.basis)
    assert 0 <= Fraction(social.rate, EQUITY_SCALE) / bankruptcy.rate - 1 < Fraction(1, 10**9)
    assert Fraction(9, 10_000) < bankruptcy.rate < Fraction(10, 10_000)

    # Bob, dave and the keeper each lose the same fraction r of their equity.
    # Their stored collateral is untouched until they are next touched, but
    # the health view already deducts the charge: the charge is the equity
    # "unpaid" (collateral + PnL - pending funding) minus the equity now. Each
    # is the model's exact r * e rounded up, to within a unit, so the
    # fractions charge / e are equal up to that rounding.
    fractions = {}
    for name, account in (("bob", bob), ("dave", dave), ("keeper", liquidator)):
        a, exact_charge = account.address, bankruptcy.charges[account.address]
        assert ch.collateral(a) == s.model.collateral[a], name
        charge = unpaid_equity(mirror, a) - ch.health(a).equity
        assert abs(charge - ceil(exact_charge)) <= 1, name
        equity = exact_charge / bankruptcy.rate  # e, exact, at the bankruptcy
        fractions[name] = charge / equity
        assert abs(fractions[name] - bankruptcy.rate) <= 2 / equity, name
    assert max(fractions.values()) - min(fractions.values()) < Fraction(1, 10**9)
    # The keeper pays ~17.38, bob ~7.66, dave ~3.62: 28.66 in all, plus a unit.
    assert 7 * u < bankruptcy.charges[bob.address] < 8 * u
    assert sum(bankruptcy.charges.values()) == bankruptcy.residual + 1
    s.agree(alice, bob, carol, dave, liquidator)

    # Bob withdraws 1,000: the withdrawal touches his account first, which
    # books his charge (~7.66) into his collateral, then his funding.
    collateral_before = ch.collateral(bob)
    charge = unpaid_equity(mirror, bob.address) - ch.health(bob).equity
    sent = s.withdraw(bob, 1_000 * u)
    [settled] = by_name(sent, "LossSettled")
    [funding] = by_name(sent, "FundingSettled")
    assert (settled.account, settled.charge) == (bob.address, charge)
    assert abs(settled.charge - s.model.loss_charged[bob.address]) <= 1
    assert (settled.scale_before, settled.scale_after) == (EQUITY_SCALE, social.index_after)
    assert ch.collateral(bob) == collateral_before - settled.charge - funding.amount - 1_000 * u
    assert ch.health(bob).equity == unpaid_equity(mirror, bob.address)  # nothing pending any more
    # What is still receivable is dave's and the keeper's charges.
    assert ch.loss_receivable() == bankruptcy.residual - settled.charge
    s.agree(alice, bob, carol, dave, liquidator)
    # The ledger identity holds to the unit (the guard also checks it after
    # every transaction).
    assert mirror.system.conservation_errors() == []


def unpaid_equity(mirror, account):
    """Equity without any pending EQUITY charge: stored collateral, PnL at the
    mark, pending funding; all from chain views."""
    ch = mirror.ch
    position = ch.positions(account, ETH)
    value = position.size * mirror.system.oracle.price(ETH) // WAD
    return ch.collateral(account) + value - position.open_notional - mirror.lens.pending_funding(account, ETH)
