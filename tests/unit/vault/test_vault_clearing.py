"""InsuranceVault: owner functions, cover() and the backstop margin account."""

import ape
import pytest
from ape.utils import ZERO_ADDRESS
from vault_reference import expected_shares


@pytest.fixture(scope="module")
def decimals():
    """Owner, cover and backstop logic never depends on token decimals (amounts
    are scaled by `unit`): run this module at 6 decimals only to keep the suite
    fast. Decimals-sensitive paths (conversions, rounding, exits) run at 6 and
    18 in test_vault_deposit.py and test_vault_redeem.py."""
    return 6


def test_set_cooldown__updates_and_logs(vault, admin):
    tx = vault.set_cooldown(30 * 86_400, sender=admin)
    assert vault.cooldown() == 30 * 86_400
    logs = list(tx.decode_logs(vault.CooldownSet))
    assert [log.cooldown for log in logs] == [30 * 86_400]


def test_set_cooldown__not_owner__reverts(vault, insurer):
    with ape.reverts("ownership: not owner"):
        vault.set_cooldown(0, sender=insurer)


def test_set_cooldown__above_30_days__reverts(vault, admin):
    with ape.reverts("vault: cooldown too long"):
        vault.set_cooldown(30 * 86_400 + 1, sender=admin)


# --- set_clearing_house ---


def test_set_clearing_house__once_and_logs(vault, admin, traders):
    tx = vault.set_clearing_house(traders[9], sender=admin)
    assert vault.clearing_house() == traders[9]
    logs = list(tx.decode_logs(vault.ClearingHouseSet))
    assert [log.clearing_house for log in logs] == [traders[9]]
    with ape.reverts("vault: clearing house set"):
        vault.set_clearing_house(traders[8], sender=admin)


def test_set_clearing_house__not_owner__reverts(vault, traders):
    with ape.reverts("ownership: not owner"):
        vault.set_clearing_house(traders[9], sender=traders[9])


def test_set_clearing_house__zero_address__reverts(vault, admin):
    with ape.reverts("vault: zero address"):
        vault.set_clearing_house(ZERO_ADDRESS, sender=admin)


# --- cover ---


def test_cover__pays_requested_amount_and_logs(vault, token, clearing, deposit, insurer, traders, unit):
    deposit(insurer, 1_000 * unit)
    tx = clearing.draw(300 * unit, sender=traders[9])
    assert clearing.last_paid() == 300 * unit
    assert token.balanceOf(clearing) == 300 * unit
    assert vault.totalAssets() == 700 * unit
    logs = list(tx.decode_logs(vault.InsuranceDrawn))
    assert [
        (log.clearing_house, log.amount_requested, log.amount_paid, log.assets_after)
        for log in logs
    ] == [(clearing.address, 300 * unit, 300 * unit, 700 * unit)]


def test_cover__caps_at_balance(vault, token, clearing, deposit, insurer, traders, unit):
    deposit(insurer, 1_000 * unit)
    tx = clearing.draw(5_000 * unit, sender=traders[9])
    assert clearing.last_paid() == 1_000 * unit
    assert token.balanceOf(clearing) == 1_000 * unit
    assert token.balanceOf(vault) == 0
    logs = list(tx.decode_logs(vault.InsuranceDrawn))
    assert [(log.amount_requested, log.amount_paid, log.assets_after) for log in logs] == [
        (5_000 * unit, 1_000 * unit, 0)
    ]


def test_cover__empty_vault_or_zero_amount__pays_zero_without_revert(
    vault, clearing, deposit, insurer, traders
):
    clearing.draw(10, sender=traders[9])
    assert clearing.last_paid() == 0
    deposit(insurer, 100)
    tx = clearing.draw(0, sender=traders[9])
    assert clearing.last_paid() == 0
    logs = list(tx.decode_logs(vault.InsuranceDrawn))
    assert [(log.amount_requested, log.amount_paid, log.assets_after) for log in logs] == [
        (0, 0, 100)
    ]


def test_cover__backstop_equity_not_paid(vault, admin, clearing, deposit, insurer, traders, unit):
    # cover pays idle balance only; the backstop account stays at the clearing house
    deposit(insurer, 1_000 * unit)
    vault.fund_backstop(600 * unit, sender=admin)
    clearing.draw(1_000 * unit, sender=traders[9])
    assert clearing.last_paid() == 400 * unit
    assert vault.totalAssets() == 600 * unit


def test_cover__not_clearing_house__reverts(vault, clearing, admin, traders):
    with ape.reverts("vault: not clearing house"):
        vault.cover(1, sender=admin)
    with ape.reverts("vault: not clearing house"):
        vault.cover(1, sender=traders[9])


def test_cover__no_clearing_house_set__reverts(vault, traders):
    with ape.reverts("vault: not clearing house"):
        vault.cover(1, sender=traders[0])


# --- backstop ---


def test_fund_backstop__moves_margin_keeps_total_assets_and_logs(
    vault, token, clearing, deposit, admin, insurer, unit
):
    deposit(insurer, 1_000 * unit)
    tx = vault.fund_backstop(400 * unit, sender=admin)
    assert vault.backstop_active()
    assert clearing.health(vault).equity == 400 * unit
    assert token.balanceOf(clearing) == 400 * unit
    assert vault.idle_assets() == 600 * unit
    assert vault.backstop_value() == 400 * unit
    assert vault.totalAssets() == 1_000 * unit
    assert token.allowance(vault, clearing) == 0
    logs = list(tx.decode_logs(vault.BackstopFunded))
    assert [(log.clearing_house, log.amount) for log in logs] == [(clearing.address, 400 * unit)]


def test_fund_backstop__not_owner__reverts(vault, clearing, insurer):
    with ape.reverts("ownership: not owner"):
        vault.fund_backstop(1, sender=insurer)


def test_fund_backstop__zero_amount__reverts(vault, clearing, admin):
    with ape.reverts("vault: zero amount"):
        vault.fund_backstop(0, sender=admin)


def test_fund_backstop__no_clearing_house__reverts(vault, deposit, admin, insurer):
    deposit(insurer, 100)
    with ape.reverts("vault: no clearing house"):
        vault.fund_backstop(1, sender=admin)


def test_fund_backstop__above_idle__reverts(vault, clearing, deposit, admin, insurer):
    deposit(insurer, 100)
    with ape.reverts("vault: insufficient liquidity"):
        vault.fund_backstop(101, sender=admin)


def test_backstop_value__follows_positive_equity_only(
    vault, clearing, deposit, admin, insurer, unit
):
    deposit(insurer, 1_000 * unit)
    vault.fund_backstop(500 * unit, sender=admin)
    clearing.set_equity(vault, 800 * unit, sender=admin)  # backstop position gained 300
    assert vault.totalAssets() == 1_300 * unit
    clearing.set_equity(vault, -50 * unit, sender=admin)  # bankrupt backstop: counts as 0
    assert vault.backstop_value() == 0
    assert vault.totalAssets() == 500 * unit
    assert vault.backstop_active()


def test_backstop_value__gain_shows_in_share_price(
    vault, clearing, deposit, admin, insurer, traders, unit
):
    shares = deposit(insurer, 1_000 * unit)
    vault.fund_backstop(500 * unit, sender=admin)
    clearing.set_equity(vault, 1_500 * unit, sender=admin)
    assert abs(vault.convertToAssets(shares) - 2_000 * unit) <= 1
    supply, assets = vault.totalSupply(), vault.totalAssets()
    late = deposit(traders[0], 1_000 * unit)
    # a late depositor pays the doubled price: about half the shares
    assert late == expected_shares(1_000 * unit, supply, assets)
    assert late < shares // 2 + 1_000


def test_withdraw_backstop__returns_margin_and_logs(
    vault, token, clearing, deposit, admin, insurer, unit
):
    deposit(insurer, 1_000 * unit)
    vault.fund_backstop(400 * unit, sender=admin)
    tx = vault.withdraw_backstop(100 * unit, sender=admin)
    assert vault.idle_assets() == 700 * unit
    assert clearing.health(vault).equity == 300 * unit
    assert vault.backstop_active()  # equity left
    logs = list(tx.decode_logs(vault.BackstopWithdrawn))
    assert [(log.clearing_house, log.amount) for log in logs] == [(clearing.address, 100 * unit)]
    vault.withdraw_backstop(300 * unit, sender=admin)
    assert not vault.backstop_active()  # emptied: no more equity() calls
    assert vault.totalAssets() == 1_000 * unit


def test_withdraw_backstop__not_owner__reverts(vault, clearing, insurer):
    with ape.reverts("ownership: not owner"):
        vault.withdraw_backstop(1, sender=insurer)


def test_withdraw_backstop__zero_amount__reverts(vault, clearing, admin):
    with ape.reverts("vault: zero amount"):
        vault.withdraw_backstop(0, sender=admin)


def test_withdraw_backstop__no_clearing_house__reverts(vault, admin):
    with ape.reverts("vault: no clearing house"):
        vault.withdraw_backstop(1, sender=admin)


def test_withdraw_backstop__clearing_house_refuses__bubbles_reason(
    vault, clearing, deposit, admin, insurer
):
    deposit(insurer, 100)
    vault.fund_backstop(50, sender=admin)
    with ape.reverts("clearing: insufficient equity"):
        vault.withdraw_backstop(51, sender=admin)
