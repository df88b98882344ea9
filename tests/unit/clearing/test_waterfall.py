"""The loss waterfall after a bankrupt liquidation, and backstop liquidations.

Story (whole tokens): a trader deposits 250 and buys 1 ETH at 2_000 (maker
fee 0.4 -> collateral 249.6). The mark gaps down to 1_700: equity
249.6 - 300 = -50.4. The whole position is taken over at 1_700 with no
penalty (there is no equity to charge), the account is left with -50.4 of
collateral, and the waterfall draws the 50.4 deficit from the insurance
vault; whatever the vault does not pay is the residual, recorded as bad debt
for the market's loss policy.
"""

import ape
import pytest
from perpclear.model import WAD
from perpclear.system import POLICY_ADL, POLICY_EQUITY

from unit.clearing.helpers import Mirror, addr, assert_liquidated

ETH = 0
HUGE = 1_000 * WAD


@pytest.fixture
def mirror(system, chain):
    return Mirror(system, chain)


@pytest.fixture
def trader(traders):
    return traders[0]


@pytest.fixture
def opened(mirror, trader, traders, liquidator):
    """The trader is long 1 ETH at 2_000 on 250 of margin; the liquidator holds 10_000."""
    unit = mirror.system.unit
    mirror.fund(trader, 250 * unit)
    mirror.fund(traders[1], 10_000 * unit)
    mirror.fund(liquidator, 10_000 * unit)
    mirror.trade(trader, traders[1], ETH, WAD, 2_000 * unit)
    return mirror


def gap_down(mirror, trader):
    """The mark gaps to 1_700: equity -50.4. Returns the deficit (50.4)."""
    unit = mirror.system.unit
    mirror.set_mark(ETH, 1_700 * unit)
    equity = mirror.ch.equity(trader)
    assert equity == -50_400_000 * unit // 10**6
    return -equity


def bankrupt_liquidation(mirror, trader, taker, backstop=False):
    """Liquidates the gapped account whole and checks what every bankruptcy shares."""
    ch = mirror.ch
    receipt, liq = mirror.liquidate(trader, ETH, HUGE, sender=taker, backstop=backstop)
    taker_address = mirror.system.vault if backstop else taker
    assert liq.size == WAD  # everything: equity is not positive
    assert liq.penalty == liq.liquidator_reward == liq.insurance_reward == 0
    assert_liquidated(mirror, receipt, liq, trader, taker_address, ETH)
    assert ch.positions(trader, ETH).size == 0
    assert ch.collateral(trader) == 0  # the account ends at zero whatever was paid
    assert not ch.is_liquidatable(trader)
    bankruptcy = liq.bankruptcy
    assert bankruptcy is not None
    (event,) = ch.AccountBankrupt.from_receipt(receipt)
    assert (event.account, event.market) == (trader.address, ETH)
    assert (event.deficit, event.insurance_paid, event.residual) == (
        bankruptcy.deficit,
        bankruptcy.insurance_paid,
        bankruptcy.residual,
    )
    return receipt, bankruptcy


def insurance_drawn(mirror, receipt):
    (event,) = mirror.system.vault.InsuranceDrawn.from_receipt(receipt)
    assert event.clearing_house == mirror.ch.address
    return event


# ------------------------------------------------------------ vault covers


def test_liquidate__bankrupt__vault_covers_deficit(opened, trader, insurer, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(insurer, 1_000 * unit)
    deficit = gap_down(mirror, trader)

    receipt, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    # 1_000 in the vault pays the 50.4 in full: 949.6 left, nothing residual.
    assert bankruptcy.deficit == deficit
    assert bankruptcy.insurance_paid == deficit
    assert bankruptcy.residual == 0
    assert token.balanceOf(vault) == 1_000 * unit - deficit
    drawn = insurance_drawn(mirror, receipt)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (
        deficit,
        deficit,
        1_000 * unit - deficit,
    )
    assert ch.ResidualRecorded.from_receipt(receipt) == []
    assert ch.bad_debt() == 0
    # The liquidator took 1 ETH at 1_700 and gained nothing yet.
    assert ch.positions(liquidator, ETH).size == WAD
    assert ch.collateral(liquidator) == 10_000 * unit
    mirror.check(trader, liquidator)


# ------------------------------------------------------------ residuals


def test_liquidate__bankrupt_vault_too_small__records_residual(opened, trader, insurer, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(insurer, 20 * unit)
    mirror.set_loss_policy(ETH, POLICY_ADL)
    deficit = gap_down(mirror, trader)

    receipt, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    # The vault has only 20 of the 50.4: it pays 20, 30.4 is residual.
    assert bankruptcy.insurance_paid == 20 * unit
    assert bankruptcy.residual == deficit - 20 * unit
    assert token.balanceOf(vault) == 0
    drawn = insurance_drawn(mirror, receipt)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (deficit, 20 * unit, 0)
    (residual,) = ch.ResidualRecorded.from_receipt(receipt)
    assert (residual.account, residual.market, residual.loss_policy) == (trader.address, ETH, POLICY_ADL)
    assert residual.residual == residual.bad_debt == deficit - 20 * unit
    assert ch.bad_debt() == deficit - 20 * unit
    mirror.check(trader, liquidator)


def test_liquidate__bankrupt_insurance_cap__rest_is_residual(opened, trader, insurer, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(insurer, 1_000 * unit)
    # At most 10 per bankruptcy from the vault, however full it is.
    mirror.set_market_params(ETH, max_insurance_draw=10 * unit)
    deficit = gap_down(mirror, trader)

    receipt, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    assert bankruptcy.insurance_paid == 10 * unit
    assert bankruptcy.residual == deficit - 10 * unit  # 40.4
    assert token.balanceOf(vault) == 990 * unit
    drawn = insurance_drawn(mirror, receipt)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (10 * unit, 10 * unit, 990 * unit)
    (residual,) = ch.ResidualRecorded.from_receipt(receipt)
    assert (residual.loss_policy, residual.residual, residual.bad_debt) == (
        POLICY_EQUITY,
        deficit - 10 * unit,
        deficit - 10 * unit,
    )
    assert ch.bad_debt() == deficit - 10 * unit
    mirror.check(trader, liquidator)


def test_liquidate__bankrupt_empty_vault__whole_deficit_is_residual(opened, trader, liquidator):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    assert mirror.system.vault.idle_assets() == 0
    deficit = gap_down(mirror, trader)

    # The liquidation still goes through: the liquidator gets the position,
    # the whole 50.4 becomes bad debt.
    receipt, bankruptcy = bankrupt_liquidation(mirror, trader, liquidator)

    assert (bankruptcy.insurance_paid, bankruptcy.residual) == (0, deficit)
    drawn = insurance_drawn(mirror, receipt)
    assert (drawn.amount_requested, drawn.amount_paid, drawn.assets_after) == (deficit, 0, 0)
    (residual,) = ch.ResidualRecorded.from_receipt(receipt)
    assert (residual.loss_policy, residual.residual, residual.bad_debt) == (POLICY_EQUITY, deficit, deficit)
    assert ch.bad_debt() == deficit
    assert ch.positions(liquidator, ETH).size == WAD
    mirror.check(trader, liquidator)


# ------------------------------------------------------------ backstop


def test_liquidate__backstop__vault_account_takes_position(opened, trader, insurer, keeper):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(insurer, 5_000 * unit)
    funded = mirror.fund_backstop(2_000 * unit)  # 3_000 stay idle in the vault
    assert vault.BackstopFunded.from_receipt(funded)[0].amount == 2_000 * unit
    assert ch.collateral(vault) == 2_000 * unit
    # 1_820: equity 69.6 < maintenance 91, a partial takeover of 0.7352 ETH.
    mirror.set_mark(ETH, 1_820 * unit)
    allowed = ch.max_liquidation_size(trader, ETH)

    receipt, liq = mirror.liquidate(trader, ETH, HUGE, sender=keeper, backstop=True)

    assert liq.size == allowed
    assert_liquidated(mirror, receipt, liq, trader, vault, ETH)
    assert liq.bankruptcy is None
    # The vault's margin account holds the position and the liquidator's half
    # of the 33.45 penalty; its idle balance gets the insurance half.
    assert ch.positions(vault, ETH).size == allowed
    assert ch.positions(keeper, ETH).size == 0
    assert ch.collateral(vault) == 2_000 * unit + liq.liquidator_reward
    assert token.balanceOf(vault) == 3_000 * unit + liq.insurance_reward
    assert not ch.is_liquidatable(trader)
    mirror.check(trader, vault, keeper)


def test_liquidate__backstop_bankrupt__vault_takes_position_and_covers(opened, trader, insurer, keeper):
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    vault, token = mirror.system.vault, mirror.system.token
    mirror.fund_vault(insurer, 5_000 * unit)
    mirror.fund_backstop(2_000 * unit)
    deficit = gap_down(mirror, trader)

    receipt, bankruptcy = bankrupt_liquidation(mirror, trader, keeper, backstop=True)

    # The backstop account takes 1 ETH at 1_700; the idle 3_000 pay the 50.4.
    assert ch.positions(vault, ETH).size == WAD
    assert ch.collateral(vault) == 2_000 * unit
    assert (bankruptcy.insurance_paid, bankruptcy.residual) == (deficit, 0)
    assert token.balanceOf(vault) == 3_000 * unit - deficit
    drawn = insurance_drawn(mirror, receipt)
    assert drawn.assets_after == 3_000 * unit - deficit
    assert ch.bad_debt() == 0
    mirror.check(trader, vault)


def test_liquidate__backstop_without_funding__reverts(opened, trader, insurer, keeper):
    # Funded vault, but no backstop margin account: the vault cannot carry
    # the position it would take over.
    mirror, ch, unit = opened, opened.ch, opened.system.unit
    mirror.fund_vault(insurer, 5_000 * unit)
    mirror.set_mark(ETH, 1_820 * unit)
    with ape.reverts("clearing: liquidator below initial margin"):
        ch.liquidate(trader, ETH, HUGE, True, sender=keeper)
    assert ch.collateral(addr(mirror.system.vault)) == 0
