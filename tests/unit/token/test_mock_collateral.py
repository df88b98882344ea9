"""MockCollateral: exact transfers (what the clearing house accepts)."""


def test_metadata__decimals_from_constructor(token, admin, decimals):
    assert token.decimals() == decimals
    assert token.name() == "Mock USD"
    assert token.symbol() == "mUSD"

def test_transfer__moves_exact_amount_and_logs(token, admin, traders, unit):
    token.mint(traders[0], 10 * unit, sender=admin)
    tx = token.transfer(traders[1], 3 * unit, sender=traders[0])
    assert token.balanceOf(traders[0]) == 7 * unit
    assert token.balanceOf(traders[1]) == 3 * unit
    assert token.totalSupply() == 10 * unit
    logs = list(tx.decode_logs(token.Transfer))
    assert [(log.sender, log.receiver, log.value) for log in logs] == [
        (traders[0], traders[1], 3 * unit)
    ]


def test_transfer__to_self__keeps_balance(token, admin, traders):
    token.mint(traders[0], 10, sender=admin)
    token.transfer(traders[0], 10, sender=traders[0])
    assert token.balanceOf(traders[0]) == 10


def test_transfer__zero_amount__allowed(token, traders):
    token.transfer(traders[1], 0, sender=traders[0])
    assert token.balanceOf(traders[1]) == 0


def test_transfer_from__moves_exact_amount_and_logs(token, admin, traders, unit):
    owner, spender, receiver = traders[0], traders[1], traders[2]
    token.mint(owner, 10 * unit, sender=admin)
    token.approve(spender, 10 * unit, sender=owner)
    tx = token.transferFrom(owner, receiver, 4 * unit, sender=spender)
    assert token.balanceOf(owner) == 6 * unit
    assert token.balanceOf(receiver) == 4 * unit
    logs = list(tx.decode_logs(token.Transfer))
    assert [(log.sender, log.receiver, log.value) for log in logs] == [
        (owner, receiver, 4 * unit)
    ]
    # no Approval on transferFrom (OpenZeppelin 5 behaviour)
    assert list(tx.decode_logs(token.Approval)) == []

