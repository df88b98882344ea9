"""No escape (docs/loss-policies.md, EQUITY "No escape"): the EQUITY charge is effective in the
bankruptcy transaction itself.

A trader T who knows the gap holds 10_000 of margin and a short that profits
from it. Right after the bankrupt liquidation (same block: no time passes in
boa; and next block) T tries to get out: withdraw everything, close by
trading, reduce, deposit then withdraw. In every case ``health(T)`` already
shows the charge before T acts, T's first transaction emits ``LossSettled``
with exactly that charge (the model's within one unit), and what T can take
out is lower by exactly the charge than without the bankruptcy.

test_no_escape_ape.py repeats the withdrawal attempt with ape on the embedded
chain.
"""

from fractions import Fraction

import boa
import pytest

from perpclear.model import WAD

from harness import Mirror, by_name, key

VICTIM, TRADER = 9_200_001, 9_200_002
ETH = 0


@pytest.fixture(scope="module")
def book():
    """Per decimals: T short 2 ETH, a 9.5x long victim, three bystanders, the gap done."""
    built = {}

    def get(dec):
        if dec not in built:
            sim = Mirror.in_process(dec, mm_margin=60_000, liquidator_margin=20_000)
            u = sim.u
            with sim.active():
                trader = key(TRADER)
                sim.fund(trader.address, 10_000 * u)
                sim.mint(trader.address, 1_000 * u)  # in the wallet, for the deposit attempt
                sim.open(trader, ETH, -2 * WAD)
                for i in range(3):
                    other = key(9_200_100 + i)
                    sim.fund(other.address, (1_000 + 500 * i) * u)
                    sim.open(other, ETH, (i + 1) * WAD // 2 * (-1) ** i)
                victim = sim.victim(VICTIM, ETH, 2_000 * u, 950).address
                sim.move(ETH, -1_500)
            built[dec] = (sim, trader, victim)
        return built[dec]

    return get


def withdrawable(sim, account):
    """The most ``withdraw`` accepts: collateral and initial margin both bind."""
    health = sim.ch.health(account)
    headroom = health.equity - health.initial
    return min(sim.lens.settled_collateral(account), headroom)


def refused(sim, account, amount):
    with boa.env.prank(account), pytest.raises(boa.BoaError):
        sim.ch.withdraw(amount)


def settled_charge(logs, account):
    events = [e for e in by_name(logs, "LossSettled") if e.account == account]
    assert len(events) == 1, f"no LossSettled for {account} in the first transaction after the bankruptcy"
    return events[0].charge


@pytest.mark.parametrize("decimals_", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("timing", ["same_block", "next_block"])
@pytest.mark.parametrize("action", ["withdraw_all", "close", "reduce", "deposit_then_withdraw"])
def test_no_escape__informed_trader_pays_the_charge(book, decimals_, timing, action):
    sim, trader, victim = book(decimals_)
    t = trader.address
    u = sim.u
    with sim.anchor():
        health_before = sim.ch.health(t)
        collateral_before = sim.ch.collateral(t)
        room_before = min(collateral_before, health_before.equity - health_before.initial)
        # the counterfactual: the same action without the bankruptcy
        with sim.anchor():
            clean = run_action(sim, trader, action, None)
        block = boa.env.evm.patch.block_number

        liq = sim.liquidate(victim, ETH)
        assert liq.socialized is not None and liq.socialized.booked > 0
        if timing == "next_block":
            boa.env.time_travel(seconds=12)
            sim.sync()
            assert boa.env.evm.patch.block_number == block + 1
        else:
            assert boa.env.evm.patch.block_number == block

        # the view shows the charge before T does anything
        shown = health_before.equity - sim.ch.health(t).equity
        expected = liq.model.bankruptcy.charges[t]
        assert shown > 0 and abs(shown - expected) <= 1, (shown, float(expected))
        assert sim.ch.collateral(t) == collateral_before  # not yet booked: lazily, on the next touch
        # the old amount is out of reach
        refused(sim, t, room_before)

        result = run_action(sim, trader, action, room_before - shown)
        charge = settled_charge(result["first_logs"], t)
        assert charge == shown
        assert result["out"] == clean["out"] - charge, (result["out"], clean["out"], charge)
        assert sim.loss_charged(t) == charge
        # and nothing more can be taken out afterwards
        refused(sim, t, 1)
        print(f"\n[no-escape {action} {timing} dec={decimals_}] charge={charge} ({charge / u:.4f} tokens)")


def run_action(sim, trader, action, expected_room):
    """Runs one escape attempt; returns the logs of T's first transaction and what T got out.

    ``out`` is everything T withdraws in the end (the attempt plus emptying the
    account when the position is gone), so with and without the bankruptcy the
    difference is the charge. With ``expected_room`` (after the bankruptcy),
    withdrawing one unit more than the reduced room must fail.
    """
    t = trader.address
    u = sim.u
    price = sim.model.markets[ETH].price
    if action == "withdraw_all":
        room = withdrawable(sim, t) if expected_room is None else expected_room
        if expected_room is not None:
            refused(sim, t, room + 1)
        logs = sim.withdraw(t, room)
        return {"first_logs": logs, "out": room}
    if action == "deposit_then_withdraw":
        logs = sim.deposit(t, 1_000 * u)
        room = withdrawable(sim, t)
        if expected_room is not None:
            assert room == expected_room + 1_000 * u
            refused(sim, t, room + 1)
        sim.withdraw(t, room)
        return {"first_logs": logs, "out": room - 1_000 * u}
    size = 2 * WAD if action == "close" else WAD
    logs = sim.trade(trader, sim.mm, ETH, size, price)  # T buys back
    room = withdrawable(sim, t)
    if expected_room is not None:
        refused(sim, t, room + 1)
    sim.withdraw(t, room)
    return {"first_logs": logs, "out": room}


def test_window__a_flat_depositor_can_leave_before_the_liquidation():
    """What is NOT guaranteed (docs/loss-policies.md, "The window before a
    bankruptcy"): after the mark that makes V bankrupt and before V's
    liquidation, a flat depositor C may withdraw everything. No residual is
    booked yet, so C pays nothing of it and the others pay C's share as well;
    nothing is lost, it is redistributed. Once the residual is booked, the same
    withdrawal is refused (the test above)."""
    sim = Mirror.in_process(6, liquidator_margin=20_000, mm_margin=20_000)
    u = sim.u
    with sim.active():
        victim = sim.victim(VICTIM, ETH, 1_000 * u, 950).address
        depositor = key(TRADER + 10).address
        sim.fund(depositor, 10_000 * u)
        sim.move(ETH, -2_000)
        with sim.anchor():  # the keeper first: C pays its share
            stays = sim.liquidate(victim, ETH).model.bankruptcy
        assert stays.charges[depositor] > 0
        sim.withdraw(depositor, 10_000 * u)  # C first: the window
        leaves = sim.liquidate(victim, ETH).model.bankruptcy
        assert leaves.residual == stays.residual > 0
        assert leaves.charges.get(depositor, 0) == 0 and sim.ch.collateral(depositor) == 0
        payers = [a for a, share in stays.charges.items() if share > 0 and a not in (depositor, sim.liquidator)]
        assert payers and all(leaves.charges[a] > stays.charges[a] for a in payers)
        # every other payer's share grows by the same factor: D lost C's equity
        grown = {a: leaves.charges[a] / stays.charges[a] for a in payers}
        assert max(grown.values()) - min(grown.values()) < Fraction(1, 10**6), grown
