"""ClearingLens: what an account will be charged and can take out, before it acts.

For a population with a pending EQUITY socialization (or an OPEN_INTEREST
charge) and an hour of funding, for each account the lens's figures equal
what the clearing house books when the account is next touched (settle it and
read the events), and ``withdraw(max_withdraw(a))`` succeeds while one unit
more reverts. Seen before: ``collateral(a)`` showed a figure that ``withdraw``
then refused after a socialization.
"""

from __future__ import annotations

import boa
import pytest

from perpclear.model import WAD
from perpclear.units import POLICIES

from budget import by_profile
from harness import ETH, Mirror, SOL, by_name, key

VICTIM = 9_400_001


def crash(sim, policy):
    """A pending socialization under ``policy`` and an hour of funding at 0.01 %/h."""
    sim.set_loss_policy(ETH, policy)
    victim = sim.victim(VICTIM, ETH, 4_000 * sim.u + 77, 950, long=True).address
    sim.move(ETH, -1_500)
    liq = sim.liquidate(victim, ETH)
    assert liq.socialized is not None and liq.socialized.booked > 0
    with boa.env.prank(sim.keeper):
        sim.ch.set_funding_rate(ETH, 10**14 // 3_600)
    boa.env.time_travel(seconds=3_600)
    with boa.env.prank(sim.keeper):  # keep the marks fresh at the new time
        sim.oracle.set_prices([ETH, SOL], [sim.model.markets[ETH].price, sim.model.markets[SOL].price])


def booked(sim, account):
    """What the clearing house books on the next touch: (EQUITY charge, funding, collateral after)."""
    with boa.env.anchor():
        with boa.env.prank(account):
            sim.ch.settle_funding(account)
        logs = sim.ch.get_logs()
        loss = sum(e.charge for e in by_name(logs, "LossSettled") if e.account == account)
        funding = sum(e.amount for e in by_name(logs, "FundingSettled") if e.account == account)
        return loss, funding, sim.ch.collateral(account)


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("policy", ["EQUITY", "OPEN_INTEREST"])
def test_lens__charges_equal_what_the_next_touch_books(populations, decimals, policy):
    checked = by_profile(quick=50, ci=100)
    with populations[decimals].at(100) as sim:
        crash(sim, POLICIES[policy])
        accounts = populations[decimals].members[:checked] + [sim.mm.address, sim.liquidator]
        seen_charge = seen_funding = 0
        for account in accounts:
            shown = sim.lens.charges(account)
            loss, funding, after = booked(sim, account)
            assert shown.collateral == sim.ch.collateral(account)
            assert (shown.loss_charge, shown.funding, shown.settled) == (loss, funding, after), account
            assert sim.lens.settled_collateral(account) == after
            assert sim.lens.pending_loss_charge(account) == loss
            seen_charge += loss != 0
            seen_funding += funding != 0
        assert seen_funding > checked // 2 and (seen_charge > checked // 2 or policy == "OPEN_INTEREST")


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("policy", ["EQUITY", "OPEN_INTEREST"])
def test_lens__max_withdraw_is_exactly_what_withdraw_accepts(populations, decimals, policy):
    with populations[decimals].at(100) as sim:
        crash(sim, POLICIES[policy])
        accounts = populations[decimals].members[:40] + [sim.mm.address]
        positive = 0
        for account in accounts:
            most = sim.lens.max_withdraw(account)
            assert most == sim.lens.charges(account).max_withdraw
            with boa.env.prank(account), boa.reverts():
                sim.ch.withdraw(most + 1)
            if most > 0:
                positive += 1
                with boa.env.anchor(), boa.env.prank(account):
                    sim.ch.withdraw(most)
        assert positive > 20


def test_lens__flat_account_and_stale_marks():
    """A flat account: everything is its collateral. With a stale mark the lens
    values the position as the clearing house does (against the holder, by the
    initial margin rate) instead of reverting, and ``withdraw(max_withdraw)``
    still succeeds while one unit more reverts."""
    sim = Mirror.in_process(6)
    with sim.active():
        a = key(9_400_010)
        sim.fund(a.address, 1_000 * sim.u)
        c = sim.lens.charges(a.address)
        assert (c.collateral, c.loss_charge, c.funding, c.settled, c.equity, c.initial, c.max_withdraw) == (
            1_000 * sim.u, 0, 0, 1_000 * sim.u, 1_000 * sim.u, 0, 1_000 * sim.u)
        sim.open(a, ETH, WAD // 10)
        fresh = sim.lens.charges(a.address)
        boa.env.time_travel(seconds=10**9 + 1)
        c = sim.lens.charges(a.address)
        assert not sim.oracle.is_fresh(ETH)
        assert c.equity == sim.ch.health(a.address).equity < fresh.equity
        assert 0 < c.max_withdraw < fresh.max_withdraw
        with boa.env.prank(a.address):
            with boa.reverts("clearing: below initial margin"):
                sim.ch.withdraw(c.max_withdraw + 1)
            sim.ch.withdraw(c.max_withdraw)