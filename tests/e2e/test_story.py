"""The whole clearing story, checked unit for unit against the exact model.

Traders deposit and trade ETH-PERP at 2,000; longs pay funding for eight hours;
the price slides to 1,850 and a keeper liquidates an over-levered long partially,
then at 1,740 fully; a gap to 1,550 makes a second long bankrupt: the insurance
vault covers what it holds and the market's EQUITY loss policy socializes the
rest in the same transaction: every account's equity shrinks by the same
fraction, booked at once and settled into each account when it is next touched.

Runs on the embedded chain and, marked ``anvil``, on a real anvil node.
"""

from fractions import Fraction

import pytest

from perpclear.model import WAD, ClearingModel, ceil
from perpclear.units import EQUITY_SCALE
from perpclear.system import POLICY_EQUITY

pytestmark = pytest.mark.anvil

ETH = 0


@pytest.fixture
def story(system, chain, traders, liquidator, insurer):
    model = ClearingModel(now=chain.blocks.head.timestamp)
    for spec in system.markets:
        model.add_market(spec.params, spec.price * system.unit, spec.loss_policy)
    return Story(system, model, chain)


class Story:
    """Sends each step to the chain and to the model, then compares them."""

    def __init__(self, system, model, chain):
        self.system, self.model, self.chain = system, model, chain
        self.ch = system.clearing_house
        self.lens = system.lens
        # The chain books an EQUITY charge in 27-digit fixed point, the model
        # exactly: after one, what it charged may be a unit off (see check).
        self.equity_socializations = 0

    def _at(self, receipt):
        self.model.set_time(self.chain.blocks[receipt.block_number].timestamp)
        return receipt

    def fund(self, account, amount):
        self.system.fund(account, amount)
        self.model.set_time(self.chain.blocks.head.timestamp)
        self.model.deposit(account.address, amount)

    def fund_vault(self, insurer, amount):
        self.system.fund_vault(insurer, amount)
        self.model.vault_assets += amount

    def trade(self, buyer, seller, size, price):
        self._at(self.system.trade(buyer, seller, ETH, size, price))
        return self.model.trade(buyer.address, seller.address, ETH, size, price, maker=buyer.address)

    def set_mark(self, price):
        self._at(self.system.set_mark(ETH, price))
        self.model.set_price(ETH, price)

    def set_funding_rate(self, rate):
        self._at(self.ch.set_funding_rate(ETH, rate, sender=self.system.keeper))
        self.model.set_funding_rate(ETH, rate)

    def liquidate(self, account, liquidator, max_size):
        receipt = self._at(self.ch.liquidate(account, ETH, max_size, False, sender=liquidator))
        expected = self.model.liquidate(account.address, ETH, max_size, liquidator.address)
        if expected.bankruptcy is not None and expected.bankruptcy.charges:
            self.equity_socializations += 1
        return receipt, expected

    def withdraw(self, account, amount):
        receipt = self._at(self.ch.withdraw(amount, sender=account))
        self.model.withdraw(account.address, amount)
        return receipt

    def check(self, *accounts):
        """Every number of every account, the vault and the ledger equals the
        model; what an EQUITY charge reaches (collateral once settled, equity,
        the loss receivable) to within a unit per socialization."""
        units = self.equity_socializations
        for account in accounts:
            a = account.address
            assert abs(self.ch.collateral(a) - self.model.collateral.get(a, 0)) <= units, a
            pos, mpos = self.ch.positions(a, ETH), self.model.position(a, ETH)
            assert (pos.size, pos.open_notional) == (mpos.size, mpos.open_notional), a
            health, mhealth = self.ch.health(a), self.model.health(a)
            assert (health.maintenance, health.initial) == (mhealth.maintenance, mhealth.initial), a
            assert abs(health.equity - mhealth.equity) <= units, a
        settled = len(self.model.loss_charged) * units
        assert abs(self.ch.loss_receivable() - self.model.loss_receivable) <= settled
        assert self.system.token.balanceOf(self.system.vault) == self.model.vault_assets
        assert self.ch.bad_debt() == self.model.bad_debt
        assert self.ch.funding_pool() == self.model.funding_pool
        assert self.ch.protocol_fees() == self.model.protocol_fees
        assert self.ch.insurance_fees() == self.model.insurance_fees
        assert self.system.token.balanceOf(self.ch) == self.model.token_balance
        assert self.model.ledger_gap() == 0


def test_story__trade_fund_crash_liquidate_bankrupt(story, traders, liquidator, insurer, chain):
    s, u = story, story.system.unit
    ch, vault = story.ch, story.system.vault
    lens = story.lens
    alice, bob, carol, dave = traders[:4]

    # Insurers put 50 into the vault; traders and a keeper fund their margin.
    s.fund_vault(insurer, 50 * u)
    s.fund(alice, 1_100 * u)  # will go 5 ETH long at 2,000: ~9x
    s.fund(bob, 6_000 * u)  # the short side of alice
    s.fund(carol, 720 * u)  # will go 2 ETH long: ~5.5x
    s.fund(dave, 3_000 * u)  # the short side of carol
    s.fund(liquidator, 20_000 * u)
    s.check(alice, bob, carol, dave, liquidator)

    s.trade(alice, bob, 5 * WAD, 2_000 * u)
    s.trade(carol, dave, 2 * WAD, 2_000 * u)
    s.check(alice, bob, carol, dave)
    assert ch.positions(alice, ETH).size == 5 * WAD
    assert ch.positions(bob, ETH).size == -5 * WAD

    # Longs pay 0.01% of the mark per hour for eight hours.
    s.set_funding_rate(10**14 // 3_600)
    chain.pending_timestamp += 8 * 3_600
    s.set_mark(2_000 * u)
    receipt = s._at(ch.settle_funding(alice, sender=liquidator))
    owed = s.model.pending_funding(alice.address, ETH)
    s.model.touch(alice.address)
    s.check(alice, bob, carol, dave)
    # alice paid 5 ETH * 2,000 * 0.01% * 8 h = ~8
    [settled] = ch.FundingSettled.from_receipt(receipt)
    assert settled.amount == owed
    assert 79 * u // 10 < owed < 81 * u // 10

    # The price slides to 1,850: alice is below maintenance and is cut partially.
    s.set_mark(1_850 * u)
    assert lens.is_liquidatable(alice)
    # The view answers for the current block; the liquidation happens one
    # second of funding later, so it may take a hair more.
    allowed = lens.max_liquidation_size(alice, ETH)
    assert 0 < allowed < 5 * WAD
    receipt, expected = s.liquidate(alice, liquidator, 5 * WAD)
    s.check(alice, bob, carol, dave, liquidator)
    event = ch.PositionLiquidated.from_receipt(receipt)[0]
    assert event.size == expected.size
    assert allowed <= event.size < allowed * 1_001 // 1_000
    assert event.penalty == expected.penalty > 0
    assert not lens.is_liquidatable(alice)  # margin restored, position kept

    # At 1,740 alice is liquidated again, this time of everything left.
    s.set_mark(1_740 * u)
    remaining = ch.positions(alice, ETH).size
    assert lens.max_liquidation_size(alice, ETH) == remaining
    receipt, expected = s.liquidate(alice, liquidator, remaining)
    s.check(alice, bob, carol, dave, liquidator)
    assert ch.positions(alice, ETH).size == 0
    # Her equity (~36) was below the full penalty (~55): the penalty took it all.
    assert ch.collateral(alice) == 0
    assert expected.penalty < 1_740 * u * 126 // 100 * 250 // 10_000
    assert expected.bankruptcy is None

    # A gap to 1,550: carol's equity is negative; the vault covers what it holds.
    s.set_mark(1_550 * u)
    carol_equity = ch.equity(carol)
    assert carol_equity < 0
    vault_before = s.model.vault_assets
    receipt, expected = s.liquidate(carol, liquidator, 2 * WAD)
    s.check(alice, bob, carol, dave, liquidator)
    bankruptcy = expected.bankruptcy
    assert bankruptcy is not None
    # The deficit is her negative equity, plus one more second of funding.
    assert -carol_equity <= bankruptcy.deficit < -carol_equity + u // 1_000
    assert bankruptcy.insurance_paid == vault_before  # the vault is drained
    assert bankruptcy.residual == bankruptcy.deficit - vault_before > 0
    [bankrupt] = ch.AccountBankrupt.from_receipt(receipt)
    assert (bankrupt.deficit, bankrupt.insurance_paid, bankrupt.residual) == (
        bankruptcy.deficit,
        bankruptcy.insurance_paid,
        bankruptcy.residual,
    )
    [drawn] = vault.InsuranceDrawn.from_receipt(receipt)
    assert drawn.amount_paid == vault_before
    assert ch.collateral(carol) == 0
    assert vault.totalAssets() == 0

    # The vault (50 + ~105 of liquidation penalties) paid ~155 of carol's ~184;
    # the residual (~28.66) is socialized under EQUITY in the same transaction:
    # r = (R + 1) / D, D the sum of every account's equity (~30,889: the keeper
    # ~18,735, bob ~8,253, dave ~3,901), about 0.093 %. Nothing is left as bad
    # debt; the whole residual is booked as receivable from the accounts.
    assert story.system.markets[ETH].loss_policy == POLICY_EQUITY
    assert 28 * u < bankruptcy.residual < 29 * u
    assert ch.ResidualRecorded.from_receipt(receipt) == []
    [social] = ch.LossSocialized.from_receipt(receipt)
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
        charge = unpaid_equity(story, a) - ch.equity(a)
        assert abs(charge - ceil(exact_charge)) <= 1, name
        equity = exact_charge / bankruptcy.rate  # e, exact, at the bankruptcy
        fractions[name] = charge / equity
        assert abs(fractions[name] - bankruptcy.rate) <= 2 / equity, name
    assert max(fractions.values()) - min(fractions.values()) < Fraction(1, 10**9)
    # The keeper pays ~17.38, bob ~7.66, dave ~3.62: 28.66 in all, plus a unit.
    assert 7 * u < bankruptcy.charges[bob.address] < 8 * u
    assert sum(bankruptcy.charges.values()) == bankruptcy.residual + 1
    s.check(alice, bob, carol, dave, liquidator)

    # Bob withdraws 1,000: the withdrawal touches his account first, which
    # books his charge (~7.66) into his collateral, then his funding.
    collateral_before = ch.collateral(bob)
    charge = unpaid_equity(story, bob.address) - ch.equity(bob)
    receipt = s.withdraw(bob, 1_000 * u)
    [settled] = ch.LossSettled.from_receipt(receipt)
    [funding] = ch.FundingSettled.from_receipt(receipt)
    assert (settled.account, settled.charge) == (bob.address, charge)
    assert abs(settled.charge - s.model.loss_charged[bob.address]) <= 1
    assert (settled.scale_before, settled.scale_after) == (EQUITY_SCALE, social.index_after)
    assert ch.collateral(bob) == collateral_before - settled.charge - funding.amount - 1_000 * u
    assert ch.equity(bob) == unpaid_equity(story, bob.address)  # nothing pending any more
    # What is still receivable is dave's and the keeper's charges.
    assert ch.loss_receivable() == bankruptcy.residual - settled.charge
    s.check(alice, bob, carol, dave, liquidator)
    # The ledger identity holds to the unit (the guard also checks it after
    # every transaction).
    assert story.system.conservation_errors() == []


def unpaid_equity(story, account):
    """Equity without any pending EQUITY charge: stored collateral, PnL at the
    mark, pending funding; all from chain views."""
    ch = story.ch
    position = ch.positions(account, ETH)
    value = position.size * story.system.oracle.price(ETH) // WAD
    return ch.collateral(account) + value - position.open_notional - story.lens.pending_funding(account, ETH)
