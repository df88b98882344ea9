"""InsuranceVault: cooldown exits pay min(value at request, value at exit)."""

import ape
from ape.utils import ZERO_ADDRESS

COOLDOWN = 86_400


def test_request_redeem__escrows_shares_and_logs(vault, deposit, insurer, unit, chain):
    shares = deposit(insurer, 1_000 * unit)
    supply = vault.totalSupply()
    value = vault.convertToAssets(shares // 2)
    tx = vault.request_redeem(shares // 2, sender=insurer)
    now = chain.blocks[tx.block_number].timestamp
    assert vault.balanceOf(insurer) == shares - shares // 2
    assert vault.balanceOf(vault) == shares // 2
    assert vault.totalSupply() == supply  # escrowed shares still bear draws
    request = vault.redeem_requests(insurer)
    assert (request.shares, request.assets, request.ready_at) == (shares // 2, value, now + COOLDOWN)
    logs = list(tx.decode_logs(vault.RedeemRequested))
    assert [(log.owner, log.shares, log.assets, log.ready_at) for log in logs] == [
        (insurer, shares // 2, value, now + COOLDOWN)
    ]
    transfers = list(tx.decode_logs(vault.Transfer))
    assert [(log.sender, log.receiver, log.value) for log in transfers] == [
        (insurer, vault.address, shares // 2)
    ]


def test_claim_redeem__after_cooldown__pays_burns_and_logs(
    vault, token, deposit, insurer, traders, unit, chain
):
    shares = deposit(insurer, 1_000 * unit)
    tx = vault.request_redeem(shares, sender=insurer)
    ready_at = chain.blocks[tx.block_number].timestamp + COOLDOWN
    chain.pending_timestamp = ready_at - 1
    with ape.reverts("vault: cooldown"):
        vault.claim_redeem(traders[0], sender=insurer)
    chain.pending_timestamp = ready_at
    tx = vault.claim_redeem(traders[0], sender=insurer)
    # 1000 tokens in, sole holder: 1000 * 10**3 shares are worth
    # shares * (1000 + 1) / (shares + 1000) = 1000 - 1 raw unit (rounded down)
    paid = token.balanceOf(traders[0])
    assert paid == shares * (1_000 * unit + 1) // (shares + 1_000)
    assert vault.totalSupply() == 0
    assert vault.balanceOf(vault) == 0
    assert vault.redeem_requests(insurer).shares == 0
    logs = list(tx.decode_logs(vault.Withdraw))
    assert [(log.sender, log.receiver, log.owner, log.assets, log.shares) for log in logs] == [
        (insurer, traders[0], insurer, paid, shares)
    ]
    # decode_logs matches the token's Transfer too (same signature): keep the vault's
    burns = [log for log in tx.decode_logs(vault.Transfer) if log.contract_address == vault.address]
    assert [(log.sender, log.receiver, log.value) for log in burns] == [
        (vault.address, ZERO_ADDRESS, shares)
    ]
    # the request is closed: a new one can be opened
    with ape.reverts("vault: no request"):
        vault.claim_redeem(insurer, sender=insurer)


def test_claim_redeem__draw_during_cooldown__pays_lower_exit_value(
    vault, token, clearing, deposit, insurer, traders, unit, wait_cooldown
):
    # two insurers with 1000 each; the first asks to leave, then a 500 draw hits
    shares = deposit(insurer, 1_000 * unit)
    deposit(traders[0], 1_000 * unit)
    vault.request_redeem(shares, sender=insurer)
    at_request = vault.redeem_requests(insurer).assets
    clearing.draw(500 * unit, sender=traders[9])
    assert vault.totalAssets() == 1_500 * unit
    exit_value = vault.convertToAssets(shares)  # ~750: escrowed shares bore half the draw
    assert exit_value < at_request
    wait_cooldown()
    vault.claim_redeem(insurer, sender=insurer)
    assert token.balanceOf(insurer) == exit_value
    assert abs(exit_value - 750 * unit) <= 1
    # the remaining insurer bore exactly its half of the draw
    assert abs(vault.convertToAssets(vault.balanceOf(traders[0])) - 750 * unit) <= 1


def test_claim_redeem__income_during_cooldown__pays_request_value_surplus_stays(
    vault, token, deposit, donate, insurer, traders, unit, wait_cooldown
):
    shares = deposit(insurer, 1_000 * unit)
    deposit(traders[0], 1_000 * unit)
    vault.request_redeem(shares, sender=insurer)
    at_request = vault.redeem_requests(insurer).assets
    donate(1_000 * unit)  # penalties / fee share arrive during the cooldown
    assert vault.convertToAssets(shares) > at_request
    wait_cooldown()
    vault.claim_redeem(insurer, sender=insurer)
    assert token.balanceOf(insurer) == at_request  # ~1000, not ~1500
    assert abs(at_request - 1_000 * unit) <= 1
    # the remaining insurer keeps all the income: ~2000
    remaining = vault.convertToAssets(vault.balanceOf(traders[0]))
    assert abs(remaining - 2_000 * unit) <= 2
    assert vault.totalAssets() == 3_000 * unit - at_request


def test_claim_redeem__funds_at_backstop__insufficient_liquidity(
    vault, clearing, deposit, admin, insurer, unit, wait_cooldown
):
    shares = deposit(insurer, 1_000 * unit)
    vault.fund_backstop(900 * unit, sender=admin)
    vault.request_redeem(shares, sender=insurer)
    wait_cooldown()
    with ape.reverts("vault: insufficient liquidity"):
        vault.claim_redeem(insurer, sender=insurer)
    vault.withdraw_backstop(900 * unit, sender=admin)
    vault.claim_redeem(insurer, sender=insurer)


def test_claim_redeem__vault_wiped_out__pays_zero_and_burns(
    vault, token, clearing, deposit, insurer, traders, unit, wait_cooldown
):
    shares = deposit(insurer, 100 * unit)
    vault.request_redeem(shares, sender=insurer)
    clearing.draw(100 * unit, sender=traders[9])
    wait_cooldown()
    tx = vault.claim_redeem(insurer, sender=insurer)
    assert token.balanceOf(insurer) == 0
    assert vault.totalSupply() == 0
    logs = list(tx.decode_logs(vault.Withdraw))
    assert [(log.assets, log.shares) for log in logs] == [(0, shares)]
