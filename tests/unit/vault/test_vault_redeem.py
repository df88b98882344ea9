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


# --- no free option on a matured request ---


def test_front_running_a_draw__lapsed_request_cannot_claim(
    vault, token, clearing, deposit, insurer, traders, unit, chain
):
    """Two insurers with 1,000 each; I1 requests its exit and keeps the matured
    request open, waiting for a draw it sees coming. Seen before: I1 claimed
    1,000 just ahead of an 800 draw and left I2 with 200. Now a request is
    claimable only during the claim window after the cooldown: it lapsed, I1
    cancels, and both bear the draw alike (600 each)."""
    i1, i2 = insurer, traders[0]
    shares = deposit(i1, 1_000 * unit)
    deposit(i2, 1_000 * unit)
    vault.request_redeem(shares, sender=i1)
    request = vault.redeem_requests(i1)
    assert request.expires_at == request.ready_at + vault.claim_window()
    chain.pending_timestamp = request.expires_at  # the window has closed
    with ape.reverts("vault: request lapsed"):
        vault.claim_redeem(i1, sender=i1)
    clearing.draw(800 * unit, sender=traders[9])
    vault.cancel_redeem(sender=i1)
    assert vault.balanceOf(i1) == shares  # a loss is borne in full: nothing forfeited
    for account in (i1, i2):
        assert abs(vault.convertToAssets(vault.balanceOf(account)) - 600 * unit) <= 1
    assert token.balanceOf(i1) == 0


def test_claim_redeem__last_second_of_the_window_then_lapsed(vault, deposit, insurer, traders, unit, chain):
    shares = deposit(insurer, 1_000 * unit)
    deposit(traders[0], 1_000 * unit)
    vault.request_redeem(shares, sender=insurer)
    request = vault.redeem_requests(insurer)
    chain.pending_timestamp = request.expires_at - 1
    vault.claim_redeem(insurer, sender=insurer)
    shares = vault.balanceOf(traders[0])
    vault.request_redeem(shares, sender=traders[0])
    chain.pending_timestamp = vault.redeem_requests(traders[0]).expires_at
    with ape.reverts("vault: request lapsed"):
        vault.claim_redeem(traders[0], sender=traders[0])


def test_cancel_redeem__forfeits_income_earned_while_pending(
    vault, token, deposit, donate, insurer, traders, unit
):
    """Cancelling returns shares worth at most the value at request: what the
    escrowed shares earned while pending goes to the remaining insurers (a
    cancel-and-request cycle to keep an exit always ready costs the income)."""
    i1, i2 = insurer, traders[0]
    shares = deposit(i1, 1_000 * unit)
    deposit(i2, 1_000 * unit)
    vault.request_redeem(shares, sender=i1)
    at_request = vault.redeem_requests(i1).assets
    donate(200 * unit)  # income while the request is pending
    supply = vault.totalSupply()
    tx = vault.cancel_redeem(sender=i1)
    back = vault.balanceOf(i1)
    forfeited = shares - back
    assert forfeited > 0 and vault.totalSupply() == supply - forfeited  # burned
    assert vault.convertToAssets(back) <= at_request
    assert abs(vault.convertToAssets(back) - 1_000 * unit) <= 1
    assert abs(vault.convertToAssets(vault.balanceOf(i2)) - 1_200 * unit) <= 2
    logs = list(tx.decode_logs(vault.RedeemCancelled))
    assert [(log.owner, log.shares, log.forfeited) for log in logs] == [(i1, back, forfeited)]


def test_set_claim_window__owner_bounds_and_logs(vault, admin, deposit, insurer, traders, unit):
    assert vault.claim_window() == 86_400
    with ape.reverts("ownership: not owner"):
        vault.set_claim_window(7_200, sender=traders[0])
    with ape.reverts("vault: bad claim window"):
        vault.set_claim_window(3_599, sender=admin)
    with ape.reverts("vault: bad claim window"):
        vault.set_claim_window(30 * 86_400 + 1, sender=admin)
    tx = vault.set_claim_window(3_600, sender=admin)
    assert [log.claim_window for log in tx.decode_logs(vault.ClaimWindowSet)] == [3_600]
    shares = deposit(insurer, 10 * unit)
    vault.request_redeem(shares, sender=insurer)
    request = vault.redeem_requests(insurer)
    assert request.expires_at == request.ready_at + 3_600
