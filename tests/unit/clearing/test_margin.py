"""ClearingHouse margin accounts: deposit and withdraw."""

import ape
import pytest

from perpclear.model import WAD, ModelError

MAX_INT128 = 2**127 - 1


# ---------------------------------------------------------------- deposit


def test_deposit__credits_collateral_and_logs(system, traders):
    ch, token, u = system.clearing_house, system.token, system.unit
    trader = traders[0]
    system.fund(trader, 1_000 * u, deposit=0)  # minted and approved, nothing deposited

    tx = ch.deposit(400 * u, sender=trader)
    tx2 = ch.deposit(600 * u, sender=trader)
    assert ch.collateral(trader) == 1_000 * u
    assert ch.total_collateral() == 1_000 * u
    assert token.balanceOf(trader) == 0
    assert token.balanceOf(ch) == 1_000 * u
    logs = [*tx.decode_logs(ch.Deposited), *tx2.decode_logs(ch.Deposited)]
    assert [(e.account, e.amount, e.collateral) for e in logs] == [
        (trader.address, 400 * u, 400 * u),
        (trader.address, 600 * u, 1_000 * u),  # the running balance
    ]


def test_deposit__zero_or_too_large__reverts(system, traders):
    ch, trader = system.clearing_house, traders[0]
    system.fund(trader, 10 * system.unit, deposit=0)
    with ape.reverts("clearing: zero amount"):
        ch.deposit(0, sender=trader)
    # amounts are kept as int256 collateral: anything above int128 is refused up front
    with ape.reverts("clearing: amount too large"):
        ch.deposit(MAX_INT128 + 1, sender=trader)
    assert ch.collateral(trader) == 0


def test_deposit__fee_on_transfer_token__reverts(project, admin, traders, oracle, timelock, decimals):
    # A clearing house over a token that burns 1% per transfer: 100 sent, 99 received.
    unit = 10**decimals
    fee_token = project.FeeOnTransferToken.deploy("Fee USD", "fUSD", decimals, sender=admin)
    vault = project.InsuranceVault.deploy(fee_token, "perpclear insurance", "pcINS", 86_400, timelock, sender=admin)
    ch = project.ClearingHouse.deploy(fee_token, oracle, vault, admin, timelock, sender=admin)
    trader = traders[0]
    fee_token.mint(trader, 100 * unit, sender=admin)
    fee_token.approve(ch, 100 * unit, sender=trader)

    with ape.reverts("clearing: token fee on transfer"):
        ch.deposit(100 * unit, sender=trader)
    assert ch.collateral(trader) == 0
    assert fee_token.balanceOf(trader) == 100 * unit


# ---------------------------------------------------------------- withdraw


def test_withdraw__without_position__returns_tokens_and_logs(system, traders):
    ch, token, u = system.clearing_house, system.token, system.unit
    trader = traders[0]
    system.fund(trader, 1_000 * u)

    tx = ch.withdraw(250 * u, sender=trader)
    tx2 = ch.withdraw(750 * u, sender=trader)  # everything: no position, no requirement
    assert ch.collateral(trader) == 0
    assert ch.total_collateral() == 0
    assert token.balanceOf(trader) == 1_000 * u
    assert token.balanceOf(ch) == 0
    logs = [*tx.decode_logs(ch.Withdrawn), *tx2.decode_logs(ch.Withdrawn)]
    assert [(e.account, e.amount, e.collateral) for e in logs] == [
        (trader.address, 250 * u, 750 * u),
        (trader.address, 750 * u, 0),
    ]


def test_withdraw__zero_or_too_large__reverts(system, traders):
    ch, trader = system.clearing_house, traders[0]
    system.fund(trader, 10 * system.unit)
    with ape.reverts("clearing: zero amount"):
        ch.withdraw(0, sender=trader)
    with ape.reverts("clearing: amount too large"):
        ch.withdraw(MAX_INT128 + 1, sender=trader)


def test_withdraw__more_than_collateral__reverts(system, traders, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    system.fund(trader, 1_000 * u)
    with ape.reverts("clearing: amount exceeds collateral"):
        ch.withdraw(1_000 * u + 1, sender=trader)

    # An unrealised gain is equity but not collateral: long 1 ETH at 2000, mark 2500 (+500).
    system.fund(counterparty, 10_000 * u)
    open_position(trader, counterparty, 0, WAD, 2_000 * u)
    system.set_mark(0, 2_500 * u)
    collateral = ch.collateral(trader)  # 1000 - 0.4 maker fee
    assert ch.health(trader).equity > collateral + 250 * u
    with ape.reverts("clearing: amount exceeds collateral"):
        ch.withdraw(collateral + 1, sender=trader)


def test_withdraw__with_position__exact_max_above_initial_margin(system, traders, open_position, model):
    ch, token, u = system.clearing_house, system.token, system.unit
    trader, counterparty = traders[:2]
    for account, amount in ((trader, 1_000 * u), (counterparty, 10_000 * u)):
        system.fund(account, amount)
        model.deposit(str(account), amount)

    # Long 1.7 ETH at 2000.5 (maker), then the mark rises to 2103.456789:
    # collateral 1000 - 0.68 fee = ~999.32, unrealised ~+175.03, initial 10% of
    # ~3575.88 = ~357.59, so ~816.76 of the ~999.32 collateral is free.
    size, price = 17 * WAD // 10, 2_000_500_000 * u // 10**6
    mark = 2_103_456_789 * u // 10**6
    open_position(trader, counterparty, 0, size, price)
    model.trade(str(trader), str(counterparty), 0, size, price, maker=str(trader))
    system.set_mark(0, mark)
    model.set_price(0, mark)

    health = model.health(str(trader))
    assert tuple(ch.health(trader)) == (health.equity, health.maintenance, health.initial)
    free = health.equity - health.initial
    assert 0 < free < ch.collateral(trader)

    with ape.reverts("clearing: below initial margin"):
        ch.withdraw(free + 1, sender=trader)
    with pytest.raises(ModelError, match="clearing: below initial margin"):
        model.withdraw(str(trader), free + 1)

    before = token.balanceOf(trader)
    ch.withdraw(free, sender=trader)
    model.withdraw(str(trader), free)
    assert token.balanceOf(trader) == before + free
    assert ch.collateral(trader) == model.collateral[str(trader)]
    left = ch.health(trader)
    assert left.equity == left.initial  # exactly at the initial margin
    with ape.reverts("clearing: below initial margin"):
        ch.withdraw(1, sender=trader)


# ---------------------------------------------------------------- the lens


def test_lens__max_withdraw_with_a_position_and_funding(system, traders, chain):
    """`withdraw(max_withdraw(a))` succeeds and one unit more reverts, with an
    open position and an hour of pending funding (ape, both decimals)."""
    s, ch, lens, u = system, system.clearing_house, system.lens, system.unit
    long, short = traders[0], traders[1]
    s.fund(long, 1_000 * u)
    s.fund(short, 5_000 * u)
    s.trade(long, short, 0, 2 * WAD, 2_000 * u)
    ch.set_funding_rate(0, 10**14 // 3_600, sender=s.keeper)
    chain.pending_timestamp += 3_600
    s.set_mark(0, 1_990 * u)
    # Funding accrues by the second and ape mines each call in a later block:
    # stop the rate (the hour stays pending) so view and withdraw see one state.
    ch.set_funding_rate(0, 0, sender=s.keeper)
    shown = lens.charges(long)
    assert shown.funding > 0 and shown.loss_charge == 0
    assert shown.settled == ch.collateral(long) - shown.funding
    most = lens.max_withdraw(long)
    assert most == shown.max_withdraw == min(shown.settled, shown.equity - shown.initial) > 0
    with ape.reverts():
        ch.withdraw(most + 1, sender=long)
    ch.withdraw(most, sender=long)
    assert lens.max_withdraw(long) == 0
