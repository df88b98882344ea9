"""ERC-20 surface shared by MockCollateral and FeeOnTransferToken (no fee paths here)."""

import ape

MAX = 2**256 - 1


def test_metadata__from_constructor(any_token, admin):
    assert any_token.name() == "Any USD"
    assert any_token.symbol() == "aUSD"
    assert any_token.decimals() == 6
    assert any_token.owner() == admin
    assert any_token.totalSupply() == 0


def test_mint__owner__credits_and_logs(any_token, admin, traders):
    unit = 10**6
    tx = any_token.mint(traders[0], 5 * unit, sender=admin)
    assert any_token.balanceOf(traders[0]) == 5 * unit
    assert any_token.totalSupply() == 5 * unit
    logs = list(tx.decode_logs(any_token.Transfer))
    assert len(logs) == 1
    assert logs[0].sender == ape.utils.ZERO_ADDRESS
    assert logs[0].receiver == traders[0]
    assert logs[0].value == 5 * unit


def test_mint__not_owner__reverts(any_token, traders):
    with ape.reverts("ownership: not owner"):
        any_token.mint(traders[0], 1, sender=traders[0])


def test_mint__zero_address__reverts(any_token, admin):
    with ape.reverts("erc20: zero address"):
        any_token.mint(ape.utils.ZERO_ADDRESS, 1, sender=admin)


def test_approve__sets_allowance_and_logs(any_token, traders):
    owner, spender = traders[0], traders[1]
    tx = any_token.approve(spender, 123, sender=owner)
    assert any_token.allowance(owner, spender) == 123
    logs = list(tx.decode_logs(any_token.Approval))
    assert [(log.owner, log.spender, log.value) for log in logs] == [(owner, spender, 123)]
    any_token.approve(spender, 7, sender=owner)  # overwrites
    assert any_token.allowance(owner, spender) == 7


def test_approve__zero_spender__reverts(any_token, traders):
    with ape.reverts("erc20: zero address"):
        any_token.approve(ape.utils.ZERO_ADDRESS, 1, sender=traders[0])


def test_transfer__insufficient_balance__reverts(any_token, admin, traders):
    any_token.mint(traders[0], 10, sender=admin)
    with ape.reverts("erc20: insufficient balance"):
        any_token.transfer(traders[1], 11, sender=traders[0])


def test_transfer__zero_receiver__reverts(any_token, admin, traders):
    any_token.mint(traders[0], 10, sender=admin)
    with ape.reverts("erc20: zero address"):
        any_token.transfer(ape.utils.ZERO_ADDRESS, 1, sender=traders[0])


def test_transfer_from__insufficient_allowance__reverts(any_token, admin, traders):
    owner, spender = traders[0], traders[1]
    any_token.mint(owner, 100, sender=admin)
    any_token.approve(spender, 50, sender=owner)
    with ape.reverts("erc20: insufficient allowance"):
        any_token.transferFrom(owner, spender, 51, sender=spender)


def test_transfer_from__insufficient_balance__reverts(any_token, admin, traders):
    owner, spender = traders[0], traders[1]
    any_token.mint(owner, 10, sender=admin)
    any_token.approve(spender, MAX, sender=owner)
    with ape.reverts("erc20: insufficient balance"):
        any_token.transferFrom(owner, spender, 11, sender=spender)


def test_transfer_from__zero_receiver__reverts(any_token, admin, traders):
    owner, spender = traders[0], traders[1]
    any_token.mint(owner, 10, sender=admin)
    any_token.approve(spender, 10, sender=owner)
    with ape.reverts("erc20: zero address"):
        any_token.transferFrom(owner, ape.utils.ZERO_ADDRESS, 1, sender=spender)


def test_transfer_from__finite_allowance__is_decremented(any_token, admin, traders):
    owner, spender = traders[0], traders[1]
    any_token.mint(owner, 100, sender=admin)
    any_token.approve(spender, 60, sender=owner)
    any_token.transferFrom(owner, traders[2], 40, sender=spender)
    assert any_token.allowance(owner, spender) == 20


def test_transfer_from__max_allowance__is_not_decremented(any_token, admin, traders):
    owner, spender = traders[0], traders[1]
    any_token.mint(owner, 100, sender=admin)
    any_token.approve(spender, MAX, sender=owner)
    any_token.transferFrom(owner, traders[2], 40, sender=spender)
    assert any_token.allowance(owner, spender) == MAX
