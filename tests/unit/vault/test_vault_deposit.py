"""InsuranceVault: ERC-4626 deposit side, conversions, rounding, inflation guard."""

from ape.utils import ZERO_ADDRESS
from vault_reference import expected_assets, expected_shares


def test_deploy__metadata_and_owner(vault, token, admin, decimals):
    assert vault.asset() == token
    assert vault.name() == "perpclear insurance"
    assert vault.symbol() == "pcINS"
    assert vault.decimals() == decimals + 3
    assert vault.owner() == admin
    assert vault.cooldown() == 86_400
    assert vault.clearing_house() == ZERO_ADDRESS
    assert not vault.backstop_active()
    assert vault.totalSupply() == 0
    assert vault.totalAssets() == 0


def test_deposit__first__mints_1000_shares_per_unit_and_logs(vault, token, fund, insurer, traders, unit):
    fund(insurer, 100 * unit)
    tx = vault.deposit(100 * unit, traders[0], sender=insurer)
    # empty vault: shares = assets * (0 + 1000) / (0 + 1)
    assert vault.balanceOf(traders[0]) == 100 * unit * 1_000
    assert vault.totalSupply() == 100 * unit * 1_000
    assert vault.totalAssets() == 100 * unit
    assert token.balanceOf(vault) == 100 * unit
    logs = list(tx.decode_logs(vault.Deposit))
    assert [(log.sender, log.owner, log.assets, log.shares) for log in logs] == [
        (insurer, traders[0], 100 * unit, 100 * unit * 1_000)
    ]


def test_deposit__after_income__matches_reference(vault, deposit, donate, insurer, traders, unit):
    deposit(insurer, 1_000 * unit)
    donate(337 * unit + 7)
    supply, assets = vault.totalSupply(), vault.totalAssets()
    shares = deposit(traders[0], 250 * unit)
    assert shares == expected_shares(250 * unit, supply, assets)


def test_mint__takes_rounded_up_assets_and_logs(vault, token, deposit, fund, donate, insurer, traders, unit):
    deposit(insurer, 1_000 * unit)
    donate(1)  # ratio no longer exact: assets for shares need rounding
    supply, assets = vault.totalSupply(), vault.totalAssets()
    shares = 123_456_789
    cost = expected_assets(shares, supply, assets, roundup=True)
    assert vault.previewMint(shares) == cost
    fund(traders[0], cost)
    tx = vault.mint(shares, traders[1], sender=traders[0])
    assert vault.balanceOf(traders[1]) == shares
    assert token.balanceOf(traders[0]) == 0
    logs = list(tx.decode_logs(vault.Deposit))
    assert [(log.sender, log.owner, log.assets, log.shares) for log in logs] == [
        (traders[0], traders[1], cost, shares)
    ]


def test_previews__rounding_direction_favours_vault(vault, deposit, donate, insurer, unit):
    deposit(insurer, 1_000 * unit)
    donate(333 * unit + 1)  # awkward ratio
    supply, assets = vault.totalSupply(), vault.totalAssets()
    for amount in (1, 7, 999, 10**6 + 3, 12_345 * unit + 1):
        down_s = expected_shares(amount, supply, assets)
        up_s = -(-amount * (supply + 1_000) // (assets + 1))
        assert vault.convertToShares(amount) == down_s
        assert vault.previewDeposit(amount) == down_s  # shares received: down
        assert vault.previewWithdraw(amount) == up_s  # shares burnt: up
        assert up_s - down_s in (0, 1)
        shares = amount * 1_000 + 1
        down_a = expected_assets(shares, supply, assets)
        up_a = expected_assets(shares, supply, assets, roundup=True)
        assert vault.convertToAssets(shares) == down_a
        assert vault.previewRedeem(shares) == down_a  # assets paid: down
        assert vault.previewMint(shares) == up_a  # assets taken: up
        assert up_a - down_a in (0, 1)


def test_deposit_then_value__never_above_deposit(vault, deposit, donate, insurer, traders, unit):
    deposit(insurer, 1_000 * unit)
    donate(1)
    for amount in (1, 3, 1_000_003):
        shares = deposit(traders[0], amount)
        assert vault.convertToAssets(shares) <= amount
        vault.transfer(traders[1], shares, sender=traders[0])


def test_inflation_attack__donation_equal_to_deposit__victim_keeps_999_permille(
    vault, deposit, donate, traders, unit
):
    attacker, victim = traders[0], traders[1]
    attacker_shares = deposit(attacker, 1)  # 1 raw unit -> 1000 shares
    assert attacker_shares == 1_000
    donate(1_000 * unit)  # front-runs the victim's 1000-token deposit
    victim_shares = deposit(victim, 1_000 * unit)
    assert victim_shares > 0
    victim_value = vault.convertToAssets(victim_shares)
    assert victim_value * 1_000 >= 1_000 * unit * 999
    # the attacker paid 1 + 1000 tokens and cannot take back more than it put in
    assert vault.convertToAssets(attacker_shares) < 1 + 1_000 * unit


def test_inflation_attack__huge_donation__attacker_loses_far_more_than_victim(
    vault, deposit, donate, traders, unit
):
    attacker, victim = traders[0], traders[1]
    attacker_shares = deposit(attacker, 1)
    donation = 100_000 * unit  # 100x the victim's deposit
    donate(donation)
    victim_shares = deposit(victim, 1_000 * unit)
    victim_loss = 1_000 * unit - vault.convertToAssets(victim_shares)
    attacker_loss = 1 + donation - vault.convertToAssets(attacker_shares)
    assert victim_loss >= 0
    # virtual offset 10**3: half the donation is owned by the virtual shares;
    # the attacker burns ~1000x what it takes from the victim
    assert attacker_loss > 500 * victim_loss
    assert attacker_loss > donation // 3
