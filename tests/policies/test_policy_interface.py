"""One shape for every loss policy (interfaces/ILossPolicy.vyi).

The clearing house registers one contract per policy id and asks the market's
contract, at each bankruptcy, how to place the residual R: on the side
opposite the bankrupt position, on everyone's equity, or both. It books the
answer with the two charges it settles lazily, and bounds it: whatever the
contract answers (more than R, parts that overflow, a revert, nothing, a
call that runs out of gas), the liquidation goes through and what is not
placed is bad debt. So a fifth policy is a contract of its own, registered
by governance, with no change to the clearing house: the worked example is
``contracts/SideThenEquityPolicy.vy`` (docs/loss-policies.md, "Adding a
policy"), checked here against the exact model and the audit.
"""

from pathlib import Path

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpclear import model as model_module
from perpclear.audit import run_audit
from perpclear.engine import Artifact
from perpclear.model import WAD
from perpclear.units import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_PROFIT

from budget import by_profile
from harness import ETH, HUGE, Mirror, by_name, key

CONTRACTS = Path(__file__).with_name("contracts")
FIFTH = 5  # the example's policy id
ROGUE = 6
CAP_BPS = 20  # the example's cap: 0.2 % of the mark per contract of the opposite side
BPS = 10_000
VICTIM = 9_500_001
OTHERS = [key(9_500_010 + i) for i in range(4)]


def side_then_equity(r):
    """SideThenEquityPolicy's rule, for the model and the audit."""
    side = min(r.amount, r.open_interest * r.mark // WAD * CAP_BPS // BPS)
    return side, r.amount - side


def deploy_policy(sim, name, *args):
    return sim.engine.deploy(Artifact(name, CONTRACTS / f"{name}.vy"), *args, sender=sim.d.roles.admin)


def register(sim, policy, contract):
    return sim.send(sim.admin, sim.d.clearing_house, "set_loss_policy_contract", policy, contract)


def under(sim, policy, contract, rule):
    """Registers ``contract`` for ``policy`` and its ``rule`` in the model, then
    crashes a market under it (``crash``). Returns the bankrupt long."""
    register(sim, policy, contract)
    sim.model.placements[policy] = rule
    return crash(sim, policy)


def settle_all(sim, accounts):
    """Each account settles its pending charges as the model does (one unit)."""
    for account in accounts:
        chain, model, _ = sim.settle(account)
        assert abs(chain - model) <= 1, account


def crash(sim, policy):
    """Four traders on both sides, a 9x long that a 15 % drop makes bankrupt,
    a vault of 5 tokens; the market under ``policy``. Returns the long."""
    u = sim.u
    sim.set_loss_policy(ETH, policy)
    sim.fund_vault(5 * u)
    for trader, size in zip(OTHERS, (3, -2, 1, -1)):
        sim.fund(trader.address, 5_000 * u + 7)
        sim.open(trader, ETH, size * WAD + 10**15)
    victim = sim.victim(VICTIM, ETH, 1_000 * u, 900).address
    sim.move(ETH, -1_500)
    return victim


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
def test_a_fifth_policy__no_change_to_the_clearing_house__exact_and_audited(decimals, monkeypatch):
    sim = Mirror.in_process(decimals)
    with sim.active():
        victim = under(sim, FIFTH, deploy_policy(sim, "SideThenEquityPolicy", CAP_BPS), side_then_equity)
        open_interest = sim.lens.markets(ETH).long_open_interest
        mark = sim.model.markets[ETH].price

        liq = sim.liquidate(victim, ETH)  # the mirror checks chain against model after every step
        residual = liq.bankrupt.residual
        side = open_interest * mark // WAD * CAP_BPS // BPS
        assert 0 < side < residual, "the example should split the residual"
        socials = by_name(liq.events, "LossSocialized")
        assert [(s.loss_policy, s.residual) for s in socials] == [
            (POLICY_OPEN_INTEREST, side), (POLICY_EQUITY, residual - side)]
        assert sum(s.booked for s in socials) == residual == liq.model.bankruptcy.booked
        assert [p.loss_policy for p in liq.model.bankruptcy.parts] == [POLICY_OPEN_INTEREST, POLICY_EQUITY]
        assert liq.recorded is None and sim.ch.bad_debt() == 0

        # Every account settles both charges to the model's collateral.
        accounts = [t.address for t in OTHERS] + [sim.mm.address, sim.liquidator]
        settle_all(sim, accounts)
        for account in accounts:
            assert abs(sim.ch.collateral(account) - sim.model.collateral[account]) <= 1, account
        sim.check()

        # The audit rebuilds the placement once it knows the rule, and says so when it does not.
        verdict, _ = run_audit(sim.engine, sim.d.addresses())
        assert not verdict.ok and verdict.failures["socialization"], verdict.rows()
        monkeypatch.setitem(model_module.PLACEMENTS, FIFTH, side_then_equity)
        verdict, _ = run_audit(sim.engine, sim.d.addresses())
        assert verdict.ok and verdict.checked["socialization"] >= 1, verdict.rows()


SHARES = st.sampled_from([0, 1, 2_500, 5_000, 9_999, 10_000, 10_001, 20_000]) | st.integers(0, 12_000)


@pytest.fixture(scope="module", params=[6, 18], ids=["dec6", "dec18"])
def shared(request):
    """A crash in a market whose policy answers fixed shares of R (set per example)."""
    sim = Mirror.in_process(request.param)
    with sim.active():
        contract = deploy_policy(sim, "ShareOfResidualPolicy")
        register(sim, ROGUE, contract)
        victim = crash(sim, ROGUE)
    return sim, contract, victim


@settings(max_examples=by_profile(25, 100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(side_bps=SHARES, equity_bps=SHARES)
def test_any_placement_is_booked_as_the_model_books_it(shared, side_bps, equity_bps):
    """Whatever shares of R a policy asks of the two charges (each alone, both,
    all of R, more than R), the chain books what the exact model books, and
    what is not placed is bad debt: R = side + equity + bad debt, exactly."""
    sim, contract, victim = shared
    with sim.anchor():
        sim.send(sim.admin, contract, "set_shares", side_bps, equity_bps)
        sim.model.placements[ROGUE] = lambda r: (r.amount * side_bps // BPS, r.amount * equity_bps // BPS)
        bad_debt = sim.ch.bad_debt()
        liq = sim.liquidate(victim, ETH)  # chain against model after the step
        residual = liq.bankrupt.residual
        side, equity = residual * side_bps // BPS, residual * equity_bps // BPS
        if side + equity > residual:
            side = equity = 0
        socials = by_name(liq.events, "LossSocialized")
        asked = [(POLICY_OPEN_INTEREST, side)] * (side > 0) + [(POLICY_EQUITY, equity)] * (equity > 0)
        assert [(s.loss_policy, s.residual) for s in socials] == asked
        booked = sum(s.booked for s in socials)
        assert booked == liq.model.bankruptcy.booked
        assert booked + sim.ch.bad_debt() - bad_debt == residual
        settle_all(sim, [t.address for t in OTHERS] + [sim.mm.address])


BAD_ANSWERS = {"more than R": 0, "parts that overflow": 1, "a revert": 2, "out of gas": 3, "no code": None}


@pytest.mark.parametrize("answer", list(BAD_ANSWERS))
def test_a_bad_answer_places_nothing_and_never_blocks_the_liquidation(answer):
    sim = Mirror.in_process(6)
    with sim.active():
        mode = BAD_ANSWERS[answer]
        if mode is None:
            contract = key(9_500_099).address  # an address without code answers nothing
        else:
            contract = deploy_policy(sim, "RoguePolicy")
            sim.send(sim.admin, contract, "set_mode", mode)
        victim = under(sim, ROGUE, contract, lambda r: (0, 0))
        bad_debt = sim.ch.bad_debt()

        liq = sim.liquidate(victim, ETH)
        residual = liq.bankrupt.residual
        assert residual > 0 and liq.socialized is None
        assert liq.recorded.residual == residual and liq.recorded.loss_policy == ROGUE
        assert sim.ch.bad_debt() == bad_debt + residual
        assert sim.ch.positions(victim, ETH).size == 0


def test_an_answer_longer_than_two_words_is_read_by_its_first_two():
    sim = Mirror.in_process(6)
    with sim.active():
        victim = under(sim, ROGUE, deploy_policy(sim, "LongAnswerPolicy"), lambda r: (0, r.amount))
        liq = sim.liquidate(victim, ETH)
        assert liq.socialized.loss_policy == POLICY_EQUITY
        assert liq.socialized.residual == liq.socialized.booked == liq.bankrupt.residual > 0
        assert liq.recorded is None


def test_no_caller_can_starve_the_policy_into_bad_debt():
    """Whatever gas a liquidator sends, the bankrupt liquidation either reverts
    or places the whole residual: the least gas that gets it through places it."""
    sim = Mirror.in_process(6)
    with sim.active():
        victim = crash(sim, POLICY_EQUITY)
        bad_debt, receivable = sim.ch.bad_debt(), sim.ch.loss_receivable()

        def attempt(gas):
            with sim.anchor():
                try:
                    sim.ch.liquidate(victim, ETH, HUGE, False, sender=sim.liquidator, gas=gas)
                except boa.BoaError:
                    return None
                return sim.ch.bad_debt() - bad_debt, sim.ch.loss_receivable() - receivable

        low, high = 50_000, 3_000_000
        assert attempt(low) is None and attempt(high) is not None
        while high - low > 1:
            middle = (low + high) // 2
            if attempt(middle) is None:
                low = middle
            else:
                high = middle
        for gas in (high, high + 1, high + 700, high + 40_000, 3_000_000):
            added_bad_debt, booked = attempt(gas)
            assert added_bad_debt == 0 and booked > 0, gas


def test_registry__owner_only__an_unregistered_id_is_refused():
    sim = Mirror.in_process(6)
    with sim.active():
        with boa.env.prank(sim.liquidator), boa.reverts("ownership: not owner"):
            sim.ch.set_loss_policy_contract(FIFTH, sim.liquidator)
        with boa.env.prank(sim.admin), boa.reverts("clearing: unknown policy"):
            sim.ch.set_loss_policy(ETH, FIFTH)
        events = register(sim, FIFTH, deploy_policy(sim, "SideThenEquityPolicy", CAP_BPS))
        (event,) = by_name(events, "LossPolicyContractSet")
        assert event.loss_policy == FIFTH and event.policy == sim.ch.loss_policies(FIFTH) != ""
        sim.set_loss_policy(ETH, FIFTH)
        assert sim.lens.markets(ETH).loss_policy == FIFTH
        # The shipped ids are registered by the deployment.
        assert sim.ch.loss_policies(POLICY_EQUITY) != sim.ch.loss_policies(POLICY_OPEN_INTEREST)
        assert sim.ch.loss_policies(POLICY_ADL) == sim.d.deleverager
        assert sim.ch.loss_policies(POLICY_PROFIT) == sim.d.profit_policy
        # adl_fill answers only the contract registered for the market's own policy.
        evil = key(9_500_098).address
        register(sim, POLICY_ADL, evil)
        sim.set_loss_policy(ETH, POLICY_PROFIT)
        with boa.env.prank(evil), boa.reverts("clearing: not the policy's contract"):
            sim.ch.adl_fill(sim.liquidator, sim.mm.address, ETH, 1)
        with boa.env.prank(sim.d.profit_policy), boa.reverts("clearing: not bankrupt"):
            sim.ch.adl_fill(sim.liquidator, sim.mm.address, ETH, 1)  # past the gate, refused on the merits
