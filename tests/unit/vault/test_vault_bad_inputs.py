"""InsuranceVault: bad input on deposit, mint and the cooldown exits, and the
ERC-4626 entry points that are disabled. Raw-unit amounts only."""

import ape
import pytest
from ape.utils import ZERO_ADDRESS

MAX = 2**256 - 1
COOLDOWN = 86_400


@pytest.fixture(scope="module")
def decimals():
    """Every amount here is in raw units and every check is a revert or a
    balance move: decimals add nothing, run at 6 only to keep the suite fast."""
    return 6


def test_deposit__zero_amount__reverts(vault, insurer):
    with ape.reverts("vault: zero amount"):
        vault.deposit(0, insurer, sender=insurer)


def test_deposit__zero_receiver__reverts(vault, fund, insurer):
    fund(insurer, 10)
    with ape.reverts("vault: zero receiver"):
        vault.deposit(10, ZERO_ADDRESS, sender=insurer)


def test_deposit__rounds_to_zero_shares__reverts(vault, fund, donate, insurer):
    # 10_000 units donated to an empty vault: 1 unit buys 1 * 1000 / 10_001 = 0 shares
    donate(10_000)
    fund(insurer, 1)
    with ape.reverts("vault: zero shares"):
        vault.deposit(1, insurer, sender=insurer)


def test_deposit__without_allowance__reverts_in_token(vault, token, admin, insurer):
    token.mint(insurer, 10, sender=admin)
    with ape.reverts("erc20: insufficient allowance"):
        vault.deposit(10, insurer, sender=insurer)


def test_deposit__fee_on_transfer_token__refused(project, admin, insurer, decimals, timelock):
    fee_token = project.FeeOnTransferToken.deploy("Fee", "FEE", decimals, sender=admin)
    fee_vault = project.InsuranceVault.deploy(fee_token, "v", "v", 0, timelock, sender=admin)
    fee_token.mint(insurer, 1_000, sender=admin)
    fee_token.approve(fee_vault, MAX, sender=insurer)
    with ape.reverts("vault: fee-on-transfer token"):
        fee_vault.deposit(1_000, insurer, sender=insurer)
    with ape.reverts("vault: fee-on-transfer token"):
        fee_vault.mint(1_000_000, insurer, sender=insurer)


def test_mint__zero_shares__reverts(vault, insurer):
    with ape.reverts("vault: zero shares"):
        vault.mint(0, insurer, sender=insurer)


def test_mint__zero_receiver__reverts(vault, fund, insurer):
    fund(insurer, 10)
    with ape.reverts("vault: zero receiver"):
        vault.mint(1_000, ZERO_ADDRESS, sender=insurer)


def test_withdraw_and_redeem__disabled(vault, deposit, insurer):
    shares = deposit(insurer, 100)
    with ape.reverts("vault: use request_redeem"):
        vault.withdraw(1, insurer, insurer, sender=insurer)
    with ape.reverts("vault: use request_redeem"):
        vault.redeem(shares, insurer, insurer, sender=insurer)


def test_max_views__deposit_unbounded_exits_zero(vault, deposit, insurer):
    deposit(insurer, 100)
    assert vault.maxDeposit(insurer) == MAX
    assert vault.maxMint(insurer) == MAX
    assert vault.maxWithdraw(insurer) == 0
    assert vault.maxRedeem(insurer) == 0


def test_request_redeem__zero_shares__reverts(vault, insurer):
    with ape.reverts("vault: zero shares"):
        vault.request_redeem(0, sender=insurer)


def test_request_redeem__above_balance__reverts(vault, deposit, insurer):
    shares = deposit(insurer, 100)
    with ape.reverts("erc20: insufficient balance"):
        vault.request_redeem(shares + 1, sender=insurer)


def test_request_redeem__second_open_request__reverts(vault, deposit, insurer):
    shares = deposit(insurer, 100)
    vault.request_redeem(shares // 2, sender=insurer)
    with ape.reverts("vault: request pending"):
        vault.request_redeem(1, sender=insurer)


def test_claim_redeem__no_request__reverts(vault, insurer):
    with ape.reverts("vault: no request"):
        vault.claim_redeem(insurer, sender=insurer)


def test_claim_redeem__zero_receiver__reverts(vault, deposit, insurer, wait_cooldown):
    shares = deposit(insurer, 100)
    vault.request_redeem(shares, sender=insurer)
    wait_cooldown()
    with ape.reverts("vault: zero receiver"):
        vault.claim_redeem(ZERO_ADDRESS, sender=insurer)


def test_cancel_redeem__returns_shares_and_logs(vault, deposit, insurer):
    shares = deposit(insurer, 100)
    vault.request_redeem(shares, sender=insurer)
    tx = vault.cancel_redeem(sender=insurer)
    assert vault.balanceOf(insurer) == shares
    assert vault.balanceOf(vault) == 0
    assert vault.redeem_requests(insurer).shares == 0
    logs = list(tx.decode_logs(vault.RedeemCancelled))
    assert [(log.owner, log.shares) for log in logs] == [(insurer, shares)]
    vault.request_redeem(shares, sender=insurer)  # a new request may be opened


def test_cancel_redeem__no_request__reverts(vault, insurer):
    with ape.reverts("vault: no request"):
        vault.cancel_redeem(sender=insurer)


def test_set_cooldown__applies_to_new_requests_only(vault, deposit, admin, insurer, traders, chain):
    shares = deposit(insurer, 100)
    tx = vault.request_redeem(shares, sender=insurer)
    first_ready = chain.blocks[tx.block_number].timestamp + COOLDOWN
    vault.set_cooldown(0, sender=admin)
    assert vault.redeem_requests(insurer).ready_at == first_ready
    other = deposit(traders[0], 100)
    vault.request_redeem(other, sender=traders[0])
    vault.claim_redeem(traders[0], sender=traders[0])  # no wait
    with ape.reverts("vault: cooldown"):
        vault.claim_redeem(insurer, sender=insurer)
