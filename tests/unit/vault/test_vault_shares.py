"""InsuranceVault: share token metadata and ERC-20 surface."""

import ape
import pytest
from ape.utils import ZERO_ADDRESS


@pytest.fixture(scope="module")
def decimals():
    """The share token's ERC-20 logic never depends on the asset's decimals:
    run this module at 6 only (share decimals for 6 and 18 are checked in
    test_vault_deposit.py)."""
    return 6


MAX = 2**256 - 1


def test_deploy__zero_asset__reverts(project, admin, timelock):
    with ape.reverts("vault: zero address"):
        project.InsuranceVault.deploy(ZERO_ADDRESS, "v", "v", 0, timelock, sender=admin)


def test_deploy__zero_timelock__reverts(project, token, admin):
    with ape.reverts("timelock: zero address"):
        project.InsuranceVault.deploy(token, "v", "v", 0, ZERO_ADDRESS, sender=admin)


def test_deploy__cooldown_too_long__reverts(project, token, admin, timelock):
    with ape.reverts("vault: cooldown too long"):
        project.InsuranceVault.deploy(token, "v", "v", 30 * 86_400 + 1, timelock, sender=admin)


def test_transfer__moves_shares_and_logs(vault, deposit, insurer, traders, unit):
    shares = deposit(insurer, 10 * unit)
    tx = vault.transfer(traders[0], shares // 4, sender=insurer)
    assert vault.balanceOf(traders[0]) == shares // 4
    assert vault.balanceOf(insurer) == shares - shares // 4
    logs = list(tx.decode_logs(vault.Transfer))
    assert [(log.sender, log.receiver, log.value) for log in logs] == [
        (insurer, traders[0], shares // 4)
    ]


def test_transfer__insufficient_balance__reverts(vault, deposit, insurer, traders):
    shares = deposit(insurer, 10)
    with ape.reverts("erc20: insufficient balance"):
        vault.transfer(traders[0], shares + 1, sender=insurer)


def test_transfer__zero_address__reverts(vault, deposit, insurer):
    deposit(insurer, 10)
    with ape.reverts("erc20: zero address"):
        vault.transfer(ZERO_ADDRESS, 1, sender=insurer)


def test_transfer__to_vault__reverts(vault, deposit, insurer):
    # escrow only moves through request_redeem / claim_redeem / cancel_redeem
    deposit(insurer, 10)
    with ape.reverts("vault: transfer to vault"):
        vault.transfer(vault, 1, sender=insurer)


def test_approve__sets_and_logs(vault, insurer, traders):
    tx = vault.approve(traders[0], 55, sender=insurer)
    assert vault.allowance(insurer, traders[0]) == 55
    logs = list(tx.decode_logs(vault.Approval))
    assert [(log.owner, log.spender, log.value) for log in logs] == [(insurer, traders[0], 55)]


def test_approve__zero_spender__reverts(vault, insurer):
    with ape.reverts("erc20: zero address"):
        vault.approve(ZERO_ADDRESS, 1, sender=insurer)


def test_transfer_from__spends_finite_allowance(vault, deposit, insurer, traders):
    shares = deposit(insurer, 10)
    vault.approve(traders[0], shares, sender=insurer)
    vault.transferFrom(insurer, traders[1], shares - 5, sender=traders[0])
    assert vault.allowance(insurer, traders[0]) == 5
    assert vault.balanceOf(traders[1]) == shares - 5


def test_transfer_from__max_allowance__not_decremented(vault, deposit, insurer, traders):
    shares = deposit(insurer, 10)
    vault.approve(traders[0], MAX, sender=insurer)
    vault.transferFrom(insurer, traders[1], shares, sender=traders[0])
    assert vault.allowance(insurer, traders[0]) == MAX


def test_transfer_from__insufficient_allowance__reverts(vault, deposit, insurer, traders):
    deposit(insurer, 10)
    vault.approve(traders[0], 3, sender=insurer)
    with ape.reverts("erc20: insufficient allowance"):
        vault.transferFrom(insurer, traders[1], 4, sender=traders[0])


def test_transfer_from__insufficient_balance__reverts(vault, deposit, insurer, traders):
    shares = deposit(insurer, 10)
    vault.approve(traders[0], MAX, sender=insurer)
    with ape.reverts("erc20: insufficient balance"):
        vault.transferFrom(insurer, traders[1], shares + 1, sender=traders[0])


def test_transfer_from__zero_address__reverts(vault, deposit, insurer, traders):
    deposit(insurer, 10)
    vault.approve(traders[0], MAX, sender=insurer)
    with ape.reverts("erc20: zero address"):
        vault.transferFrom(insurer, ZERO_ADDRESS, 1, sender=traders[0])


def test_transfer_from__to_vault__reverts(vault, deposit, insurer, traders):
    deposit(insurer, 10)
    vault.approve(traders[0], MAX, sender=insurer)
    with ape.reverts("vault: transfer to vault"):
        vault.transferFrom(insurer, vault, 1, sender=traders[0])
