"""The loss waterfall after a bankrupt liquidation, and backstop liquidations.

Story (whole tokens): a trader deposits 250 and buys 1 ETH at 2_000 (maker
fee 0.4 -> collateral 249.6). The mark gaps down to 1_700: equity
249.6 - 300 = -50.4. The whole position is taken over at 1_700 with no
penalty (there is no equity to charge), the account is left with -50.4 of
collateral, and the waterfall draws the 50.4 deficit from the insurance
vault; whatever the vault does not pay is the residual, placed in the same
transaction by the market's loss policy (EQUITY, OPEN_INTEREST) or, under ADL
(not implemented yet), recorded as bad debt.
"""

from fractions import Fraction

import ape
import pytest
from perpclear.model import FUNDING_SCALE, WAD, ceil
from perpclear.units import EQUITY_SCALE, equity_scale, equity_scale_after
from perpclear.system import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST

from harness import addr, assert_liquidated, by_name

ETH = 0
HUGE = 1_000 * WAD
SCALE = EQUITY_SCALE  # EQUITY fixed point: scale K and rate r, 1e36 = 1.0


@pytest.fixture
def opened(open_long, liquidator):
    """The trader is long 1 ETH at 2_000 on 250 of margin against the
    counterparty's short; the counterparty and the liquidator hold 10_000."""
    return open_long(250, also=(liquidator,))


def gap_down(mirror, trader):
    """The mark gaps to 1_700: equity -50.4. Returns the deficit (50.4)."""
    unit = mirror.system.unit
    mirror.set_mark(ETH, 1_700 * unit)
    equity = mirror.ch.health(trader).equity
    assert equity == -50_400_000 * unit // 10**6
    return -equity


def bankrupt_liquidation(mirror, trader, taker, backstop=False):
    """Liquidates the gapped account whole and checks what every bankruptcy shares."""
    ch = mirror.ch
    lens = mirror.lens
    liq = mirror.liquidate(trader, ETH, HUGE, by=taker, backstop=backstop)
    sent = liq.events
    taker_address = mirror.system.vault if backstop else taker
    assert liq.model.size == WAD  # everything: equity is not positive
    assert liq.model.penalty == liq.model.liquidator_reward == liq.model.insurance_reward == 0
    assert_liquidated(mirror, liq, trader, taker_address, ETH)
    assert ch.positions(trader, ETH).size == 0
    assert ch.collateral(trader) == 0  # the account ends at zero whatever was paid
    assert not lens.is_liquidatable(trader)
    bankruptcy = liq.model.bankruptcy
    assert bankruptcy is not None
    (event,) = by_name(liq.events, "AccountBankrupt")
    assert (event.account, event.market) == (trader.address, ETH)
    assert (event.deficit, event.insurance_paid, event.residual) == (
        bankruptcy.deficit,
        bankruptcy.insurance_paid,
        bankruptcy.residual,
    )
    return sent, bankruptcy


def insurance_drawn(mirror, sent):
    (event,) = by_name(sent, "InsuranceDrawn")
    assert event.clearing_house == mirror.ch.address
    return event


# ------------------------------------------------------------ vault covers


def test_liquidate__bankrupt__vault_covers_deficit(opened, trader, insurer, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(1_000 * unit)
    deficit = gap_down(mirror, trader)

    sent, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    # 1_000 in the vault pays the 50.4 in full: 949.6 left, nothing residual.
    assert bankruptcy.deficit == deficit
    assert bankruptcy.insurance_paid == deficit
    assert bankruptcy.residual == 0
    assert token.balanceOf(vault) == 1_000 * unit - deficit
    drawn = insurance_drawn(mirror, sent)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (
        deficit,
        deficit,
        1_000 * unit - deficit,
    )
    assert by_name(sent, "ResidualRecorded") == []
    assert by_name(sent, "LossSocialized") == []
    assert (ch.bad_debt(), ch.loss_receivable()) == (0, 0)
    # The liquidator took 1 ETH at 1_700 and gained nothing yet.
    assert ch.positions(liquidator, ETH).size == WAD
    assert ch.collateral(liquidator) == 10_000 * unit
    mirror.agree(trader, liquidator)


# ------------------------------------------------------------ residuals
#
# What the vault does not pay is placed by the market's loss policy in the
# bankruptcy transaction itself. The counterparty (short 1 ETH from 2_000,
# equity 10_000 - 1 fee + 300 = 10_299) and the liquidator (long 1 ETH taken
# over at 1_700, equity 10_000) are the accounts that can bear it:
#   ADL            with no candidate to deleverage, a keeper takes the position
#                  over at the mark and the residual stays recorded as bad debt
#                  (deleveraging itself: tests/policies/test_adl_policy.py);
#   EQUITY         every account loses r = (R + 1) / D of its equity, D the sum
#                  of all equity (~20_299); booked at once, settled lazily;
#   OPEN_INTEREST  the side opposite the bankrupt long (the short) pays R per
#                  contract of open interest (1 ETH) through its funding index.


def adl_keeper(mirror, liquidator, policy):
    """In an ADL market only a keeper may take a bankrupt position at the mark."""
    if policy == POLICY_ADL:
        mirror.ch.set_keeper(liquidator, True, sender=mirror.system.admin)


def equities(mirror, *accounts):
    return {addr(a): mirror.ch.health(a).equity for a in accounts}


def assert_residual_placed(mirror, sent, bankruptcy, policy, before, counterparty, settler):
    """The residual R went where ``policy`` puts it; then the counterparty settles."""
    ch, residual = mirror.ch, bankruptcy.residual
    assert residual > 0
    state = mirror.lens.markets(ETH)
    if policy == POLICY_ADL:
        (recorded,) = by_name(sent, "ResidualRecorded")
        assert (recorded.account, recorded.market, recorded.loss_policy) == (bankruptcy.account, ETH, POLICY_ADL)
        assert recorded.residual == recorded.bad_debt == residual
        assert by_name(sent, "LossSocialized") == []
        assert bankruptcy.booked == 0
        assert (ch.bad_debt(), ch.loss_receivable()) == (residual, 0)
        assert equities(mirror, *before) == before  # nobody has been charged
        mirror.agree(*before)
        return

    # EQUITY and OPEN_INTEREST book all of it: no bad debt, nothing "recorded".
    (event,) = by_name(sent, "LossSocialized")
    assert (event.account, event.market, event.loss_policy) == (bankruptcy.account, ETH, policy)
    assert event.residual == event.booked == bankruptcy.booked == residual
    assert by_name(sent, "ResidualRecorded") == []
    assert ch.bad_debt() == 0
    collateral_before = ch.collateral(counterparty)

    if policy == POLICY_EQUITY:
        # r = ceil((R + 1) * 1e36 / D) on the chain's D, which never exceeds
        # the exact sum of equity; the model's r is the exact (R + 1) / D.
        assert bankruptcy.basis - 2 <= event.basis <= bankruptcy.basis
        assert event.rate == -(-(residual + 1) * SCALE // event.basis)
        assert event.rate >= ceil(bankruptcy.rate * SCALE)
        assert (event.index_before, event.index_after) == (SCALE, ch.scale())
        assert ch.scale() == equity_scale_after(SCALE, event.rate)
        assert equity_scale(ch.scale()) == Fraction(SCALE - event.rate, SCALE)
        assert ch.loss_receivable() == residual  # booked, nobody settled yet
        # Every other account's equity is already down by r * its equity, the
        # model's exact charge rounded up (to within one unit); the stored
        # collateral waits for the account's next touch.
        for account, equity in before.items():
            charge = bankruptcy.charges[account]
            assert charge == bankruptcy.rate * equity
            assert abs(equity - ch.health(account).equity - ceil(charge)) <= 1, account
        assert ch.collateral(counterparty) == collateral_before
        drop = before[addr(counterparty)] - ch.health(counterparty).equity
        mirror.agree(*before)

        # The counterparty's next touch books the charge into its collateral.
        touched = mirror.settle(counterparty, by=settler)[2]
        (settled,) = by_name(touched, "LossSettled")
        assert (settled.account, settled.charge) == (addr(counterparty), drop)
        assert (settled.scale_before, settled.scale_after) == (SCALE, ch.scale())
        assert ch.collateral(counterparty) == collateral_before - drop
        assert ch.loss_receivable() == residual - drop
        assert ch.health(counterparty).equity == before[addr(counterparty)] - drop
    else:
        # The trader was long: the shorts pay ceil(R * 1e36 / OI) per contract,
        # a one-sided move of the short funding index; OI is 1 ETH.
        per_contract = -(-residual * FUNDING_SCALE // WAD)
        assert (event.basis, event.rate) == (WAD, per_contract)
        assert (event.index_before, event.index_after) == (0, -per_contract)
        assert (state.long_index, state.short_index) == (0, -per_contract)
        assert ch.funding_pool() == -residual  # owed by the shorts until they settle
        assert ch.loss_receivable() == 0
        # The short owes exactly R as pending funding; the long side owes nothing.
        assert mirror.lens.pending_funding(counterparty, ETH) == residual
        assert before[addr(counterparty)] - ch.health(counterparty).equity == residual
        for account, equity in before.items():
            if account != addr(counterparty):
                assert ch.health(account).equity == equity and mirror.lens.pending_funding(account, ETH) == 0
        mirror.agree(*before)

        # It pays it at its next funding settlement.
        touched = mirror.settle(counterparty, by=settler)[2]
        (settled,) = by_name(touched, "FundingSettled")
        assert (settled.account, settled.market, settled.amount) == (addr(counterparty), ETH, residual)
        assert ch.collateral(counterparty) == collateral_before - residual
        assert ch.funding_pool() == 0
        assert ch.positions(counterparty, ETH).funding_index == -per_contract
    mirror.agree(*before)


POLICIES = pytest.mark.parametrize(
    "policy", [POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST], ids=["adl", "equity", "open_interest"]
)


@POLICIES
def test_liquidate__bankrupt_vault_too_small__residual_to_policy(
    opened, trader, counterparty, insurer, liquidator, policy
):
    mirror, unit = opened, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(20 * unit)
    mirror.set_loss_policy(ETH, policy)
    adl_keeper(mirror, liquidator, policy)
    deficit = gap_down(mirror, trader)
    before = equities(mirror, counterparty, liquidator)

    sent, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    # The vault has only 20 of the 50.4: it pays 20, 30.4 is residual.
    assert bankruptcy.insurance_paid == 20 * unit
    assert bankruptcy.residual == deficit - 20 * unit
    assert token.balanceOf(vault) == 0
    drawn = insurance_drawn(mirror, sent)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (deficit, 20 * unit, 0)
    assert_residual_placed(mirror, sent, bankruptcy, policy, before, counterparty, liquidator)
    mirror.agree(trader)


@POLICIES
def test_liquidate__bankrupt_insurance_cap__rest_to_policy(opened, trader, counterparty, insurer, liquidator, policy):
    mirror, unit = opened, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(1_000 * unit)
    # At most 10 per bankruptcy from the vault, however full it is.
    mirror.set_market_params(ETH, max_insurance_draw=10 * unit)
    mirror.set_loss_policy(ETH, policy)
    adl_keeper(mirror, liquidator, policy)
    deficit = gap_down(mirror, trader)
    before = equities(mirror, counterparty, liquidator)

    sent, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    assert bankruptcy.insurance_paid == 10 * unit
    assert bankruptcy.residual == deficit - 10 * unit  # 40.4
    assert token.balanceOf(vault) == 990 * unit
    drawn = insurance_drawn(mirror, sent)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (10 * unit, 10 * unit, 990 * unit)
    assert_residual_placed(mirror, sent, bankruptcy, policy, before, counterparty, liquidator)
    mirror.agree(trader)


@POLICIES
def test_liquidate__bankrupt_empty_vault__whole_deficit_to_policy(opened, trader, counterparty, liquidator, policy):
    mirror = opened
    assert mirror.system.vault.idle_assets() == 0
    mirror.set_loss_policy(ETH, policy)
    adl_keeper(mirror, liquidator, policy)
    deficit = gap_down(mirror, trader)
    before = equities(mirror, counterparty, liquidator)

    # The liquidation still goes through: the liquidator gets the position,
    # the whole 50.4 is residual.
    sent, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    assert (bankruptcy.insurance_paid, bankruptcy.residual) == (0, deficit)
    drawn = insurance_drawn(mirror, sent)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (deficit, 0, 0)
    assert mirror.ch.positions(liquidator, ETH).size == WAD
    assert_residual_placed(mirror, sent, bankruptcy, policy, before, counterparty, liquidator)
    mirror.agree(trader)


# ------------------------------------------------------------ backstop


def test_liquidate__backstop__vault_account_takes_position(opened, trader, insurer, keeper):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    lens = opened.lens
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(5_000 * unit)
    funded = mirror.fund_backstop(2_000 * unit)  # 3_000 stay idle in the vault
    assert by_name(funded, "BackstopFunded")[0].amount == 2_000 * unit
    assert ch.collateral(vault) == 2_000 * unit
    # 1_820: equity 69.6 < maintenance 91, a partial takeover of 0.7352 ETH.
    mirror.set_mark(ETH, 1_820 * unit)
    allowed = lens.max_liquidation_size(trader, ETH)

    liq = mirror.liquidate(trader, ETH, HUGE, by=keeper, backstop=True)

    assert liq.model.size == allowed
    assert_liquidated(mirror, liq, trader, vault, ETH)
    assert liq.model.bankruptcy is None
    # The vault's margin account holds the position and the liquidator's half
    # of the 33.45 penalty; its idle balance gets the insurance half.
    assert ch.positions(vault, ETH).size == allowed
    assert ch.positions(keeper, ETH).size == 0
    assert ch.collateral(vault) == 2_000 * unit + liq.model.liquidator_reward
    assert token.balanceOf(vault) == 3_000 * unit + liq.model.insurance_reward
    assert not lens.is_liquidatable(trader)
    mirror.agree(trader, vault, keeper)


def test_liquidate__backstop_bankrupt__vault_takes_position_and_covers(opened, trader, insurer, keeper):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(5_000 * unit)
    mirror.fund_backstop(2_000 * unit)
    deficit = gap_down(mirror, trader)

    sent, bankruptcy = bankrupt_liquidation(mirror, trader, keeper, backstop=True)

    # The backstop account takes 1 ETH at 1_700; the idle 3_000 pay the 50.4.
    assert ch.positions(vault, ETH).size == WAD
    assert ch.collateral(vault) == 2_000 * unit
    assert (bankruptcy.insurance_paid, bankruptcy.residual) == (deficit, 0)
    assert token.balanceOf(vault) == 3_000 * unit - deficit
    drawn = insurance_drawn(mirror, sent)
    assert drawn.assets_after == 3_000 * unit - deficit
    assert ch.bad_debt() == 0
    mirror.agree(trader, vault)


def test_liquidate__backstop_without_funding__reverts(opened, trader, insurer, keeper):
    # Funded vault, but no backstop margin account: the vault cannot carry
    # the position it would take over.
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    mirror.fund_vault(5_000 * unit)
    mirror.set_mark(ETH, 1_820 * unit)
    with ape.reverts("clearing: liquidator below initial margin"):
        ch.liquidate(trader, ETH, HUGE, True, sender=keeper)
    assert ch.collateral(addr(mirror.system.vault)) == 0
