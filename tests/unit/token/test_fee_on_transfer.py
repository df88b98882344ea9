"""FeeOnTransferToken: 1% of every transfer is burnt (the receiver gets 99%)."""

import ape


def test_transfer__burns_one_percent(fee_token, admin, traders, unit):
    fee_token.mint(traders[0], 100 * unit, sender=admin)
    tx = fee_token.transfer(traders[1], 50 * unit, sender=traders[0])
    # 50 sent: 0.5 burnt, 49.5 received
    assert fee_token.balanceOf(traders[0]) == 50 * unit
    assert fee_token.balanceOf(traders[1]) == 50 * unit * 99 // 100
    assert fee_token.totalSupply() == 100 * unit - 50 * unit // 100
    logs = list(tx.decode_logs(fee_token.Transfer))
    assert [(log.sender, log.receiver, log.value) for log in logs] == [
        (traders[0], traders[1], 50 * unit * 99 // 100),
        (traders[0], ape.utils.ZERO_ADDRESS, 50 * unit // 100),
    ]


def test_transfer_from__burns_one_percent_and_charges_full_allowance(
    fee_token, admin, traders, unit
):
    owner, spender, receiver = traders[0], traders[1], traders[2]
    fee_token.mint(owner, 10 * unit, sender=admin)
    fee_token.approve(spender, 10 * unit, sender=owner)
    fee_token.transferFrom(owner, receiver, 10 * unit, sender=spender)
    assert fee_token.balanceOf(owner) == 0
    assert fee_token.balanceOf(receiver) == 10 * unit * 99 // 100
    assert fee_token.allowance(owner, spender) == 0
    assert fee_token.totalSupply() == 10 * unit * 99 // 100


def test_transfer__dust__rounds_fee_down_to_zero(fee_token, admin, traders):
    fee_token.mint(traders[0], 99, sender=admin)
    tx = fee_token.transfer(traders[1], 99, sender=traders[0])
    # 99 * 1% = 0.99 -> 0: no burn log
    assert fee_token.balanceOf(traders[1]) == 99
    assert len(list(tx.decode_logs(fee_token.Transfer))) == 1


def test_transfer__balance_delta_differs_from_amount(fee_token, admin, traders, unit):
    """What a contract measuring balance deltas sees: received < amount."""
    fee_token.mint(traders[0], 1_000 * unit, sender=admin)
    before = fee_token.balanceOf(traders[1])
    fee_token.transfer(traders[1], 1_000 * unit, sender=traders[0])
    assert fee_token.balanceOf(traders[1]) - before == 990 * unit


def test_mint__no_fee(fee_token, admin, traders, unit):
    fee_token.mint(traders[0], 7 * unit, sender=admin)
    assert fee_token.balanceOf(traders[0]) == 7 * unit
    assert fee_token.totalSupply() == 7 * unit
