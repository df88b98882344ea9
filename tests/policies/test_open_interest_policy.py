"""OPEN_INTEREST policy: the opposite side pays ceil(R * 1e36 / OI) per contract.

The residual moves the funding index of the side opposite the bankrupt
position by ``per_contract = ceil(R * 1e36 / OI)``; each position on that side
pays ``ceil(|s| * per_contract / 1e36)`` with its funding, the same side as the
bankrupt position pays nothing. Chain and exact model agree to the unit.
The population (EQUITY markets) is switched to OPEN_INTEREST inside the
snapshot; the funding rate is 0, so every funding movement is the policy's.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpclear.model import MAX_INDEX, WAD
from perpclear.units import POLICY_EQUITY, POLICY_OPEN_INTEREST

from budget import by_profile
from harness import ETH, Mirror, SOL, by_name, key

VICTIM = 9_100_001


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("bankrupt_side", ["long", "short"])
def test_open_interest__opposite_side_pays_exactly_its_share(populations, decimals, bankrupt_side):
    long = bankrupt_side == "long"
    pop = populations[decimals]
    with pop.at(100) as sim:
        u = sim.u
        members = pop.members[:100]
        sim.set_loss_policy(ETH, POLICY_OPEN_INTEREST)
        sim.fund_vault(3 * u)
        victim = sim.victim(VICTIM, ETH, 4_000 * u + 77, 950, long=long).address
        sim.move(ETH, -1_500 if long else 1_500)
        accounts = list(dict.fromkeys([*members, sim.mm.address, sim.liquidator, victim]))
        sizes = {a: sim.ch.positions(a, ETH)[0] for a in accounts}
        collateral_before = {a: sim.ch.collateral(a) for a in accounts}
        index_before = sim.lens.markets(ETH).long_index if not long else sim.lens.markets(ETH).short_index
        open_interest = sim.lens.markets(ETH).long_open_interest

        liq = sim.liquidate(victim, ETH)
        b, s = liq.model.bankruptcy, liq.socialized
        residual = b.residual
        assert residual == liq.bankrupt.residual > 0 and liq.bankrupt.insurance_paid == 3 * u
        # the liquidator took the victim's side over: open interest is unchanged
        assert sim.lens.markets(ETH).long_open_interest == open_interest
        per_contract = -(-residual * 10**36 // open_interest)
        assert s.loss_policy == POLICY_OPEN_INTEREST and s.booked == residual == b.booked
        assert s.basis == open_interest and s.rate == per_contract == b.rate
        assert s.index_before == index_before
        assert s.index_after == index_before + (per_contract if not long else -per_contract)
        assert liq.recorded is None and sim.ch.bad_debt() == 0

        # views show the charge at once, chain == model exactly
        for a in accounts:
            assert tuple(sim.ch.health(a)) == tuple(sim.model.health(a).__dict__.values()), a

        paid_total = 0
        payers = 0
        for a in accounts:
            size = sim.ch.positions(a, ETH)[0]
            _, _, logs = sim.settle(a)
            funding = [e.amount for e in by_name(logs, "FundingSettled") if e.market == ETH]
            paid = funding[0] if funding else 0
            assert sim.ch.collateral(a) == sim.model.collateral[a], a
            pays = size != 0 and (size < 0) == long
            if pays:
                expected = -(-abs(size) * per_contract // 10**36)
                assert paid == expected, (a, paid, expected)
                assert sim.ch.collateral(a) == collateral_before[a] - expected
                payers += 1
            else:
                # the bankrupt side (and flat accounts) are untouched
                assert paid == 0, (a, paid)
                assert sim.ch.collateral(a) == collateral_before[a] or a in (victim, sim.liquidator), a
            paid_total += paid
        assert payers >= 10
        assert paid_total >= residual
        # the excess is rounding only: at most one unit per paying position
        assert paid_total - residual <= payers + 1
        assert sim.ch.funding_pool() == sim.model.funding_pool == paid_total - residual
        assert sum(abs(sizes[a]) for a in accounts if sizes[a] and (sizes[a] < 0) == long) == open_interest
        sim.check_accounts(accounts)
        print(f"\n[OI {bankrupt_side} dec={decimals}] R={residual} OI={open_interest} per_contract={per_contract} "
              f"paid={paid_total} payers={payers}")


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
def test_open_interest__sole_counterparty_taking_over_pays_the_whole_residual(decimals):
    """The liquidator was the victim's only counterparty: taking the position over
    nets the market to zero open interest, but the payers were fixed before the
    fill, so the liquidator pays the whole residual in the same transaction
    (before the fix it paid nothing and the residual became bad debt)."""
    sim = Mirror.in_process(decimals, policies=(POLICY_OPEN_INTEREST, POLICY_OPEN_INTEREST))
    u = sim.u
    with sim.active():
        victim = key(VICTIM)
        sim.fund(victim.address, 2_000 * u)
        size = 2_000 * u * 9 * WAD // sim.model.markets[ETH].price
        sim.trade(victim, sim.liq_key, ETH, size, sim.model.markets[ETH].price)
        sim.move(ETH, -2_000)
        funding_pool = sim.ch.funding_pool()
        before = sim.ch.health(sim.liquidator).equity
        liq = sim.liquidate(victim.address, ETH)
        b = liq.model.bankruptcy
        assert sim.lens.markets(ETH).long_open_interest == 0
        assert liq.recorded is None and sim.ch.bad_debt() == 0
        assert liq.socialized.basis == size and liq.socialized.booked == liq.bankrupt.residual == b.booked > 0
        (direct,) = [e for e in by_name(liq.events, "FundingSettled") if e.account == sim.liquidator]
        per_contract = -(-b.residual * 10**36 // size)
        assert direct.amount == -(-size * per_contract // 10**36) >= b.residual
        assert before - sim.ch.health(sim.liquidator).equity == direct.amount
        assert sim.ch.funding_pool() == funding_pool + direct.amount - b.residual
        assert sim.ch.positions(victim.address, ETH)[0] == 0 and sim.ch.collateral(victim.address) == 0


# ---------------------------------------------------------------- dust open interest

POISONER, DUST_SHORT, LATE_VICTIM, BIG_SHORT = 9_100_010, 9_100_011, 9_100_012, 9_100_013


@pytest.fixture(scope="module")
def dust_books():
    """Per decimals: ETH under OPEN_INTEREST, SOL under EQUITY, the accounts funded."""
    built = {}

    def get(decimals):
        if decimals not in built:
            sim = Mirror.in_process(decimals, policies=(POLICY_OPEN_INTEREST, POLICY_EQUITY))
            with sim.active():
                for i in (POISONER, DUST_SHORT, LATE_VICTIM):
                    sim.fund(key(i).address, 2_000 * sim.u)
                sim.fund(key(BIG_SHORT).address, 60_000 * sim.u)
            built[decimals] = sim
        return built[decimals]

    return get


def poison(sim, dust: int, gap_bps: int, long: bool):
    """A 1,000-token account with 4.5x in SOL and ``dust`` base units of ETH
    against a dust counterparty; SOL gaps ``gap_bps`` against it; SOL is
    liquidated first, so the residual lands on ETH's OPEN_INTEREST with only
    the dust pair's open interest before the fill."""
    u = sim.u
    victim, dust_side = key(POISONER), key(DUST_SHORT)
    sim.withdraw(victim.address, 1_000 * u)
    sol = sim.model.markets[SOL].price
    size = 1_000 * u * 450 // 100 * WAD // sol
    sim.open(victim, SOL, size if long else -size)
    buyer, seller = (victim, dust_side) if long else (dust_side, victim)
    sim.trade(buyer, seller, ETH, dust, sim.model.markets[ETH].price)
    sim.move(SOL, -gap_bps if long else gap_bps)
    sim.liquidate(victim.address, SOL)
    assert sim.ch.positions(victim.address, ETH).size != 0
    assert sim.lens.markets(ETH).long_open_interest == dust
    return sim.liquidate(victim.address, ETH)


def after_poison_everything_works(sim, long: bool):
    """The poisoned state blocks nothing: an EQUITY socialization in SOL and a
    200-contract position on the charged ETH side, chain == model."""
    u = sim.u
    late = key(LATE_VICTIM)
    sol = sim.model.markets[SOL].price
    sim.open(late, SOL, 2_000 * u * 450 // 100 * WAD // sol)
    sim.move(SOL, -3_000)
    liq = sim.liquidate(late.address, SOL)
    assert liq.bankrupt is not None
    big = key(BIG_SHORT)
    sim.open(big, ETH, -200 * WAD if long else 200 * WAD)
    for account in (late.address, big.address, sim.mm.address, sim.liquidator):
        chain, model = sim.ch.health(account), sim.model.health(account)
        # EQUITY charges: within one unit of the exact model (docs/loss-policies.md)
        assert abs(chain.equity - model.equity) <= 1, account
        assert (chain.maintenance, chain.initial) == (model.maintenance, model.initial), account


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
def test_open_interest__dust_open_interest_leaves_bad_debt_not_a_poisoned_index(dust_books, decimals):
    """One wei of open interest against a residual of hundreds of tokens: the
    per-contract charge is capped at the mark (the side never pays more than
    its contracts are worth), the rest is logged bad debt, and the index stays
    where arithmetic on it cannot overflow. Seen before the cap: at 18 decimals
    the short index went to about -4e56 and every later EQUITY socialization
    and any 200-contract short reverted on overflow."""
    sim = dust_books(decimals)
    with sim.anchor():
        liq = poison(sim, 1, 3_000, long=True)
        b = liq.model.bankruptcy
        assert liq.bankrupt.residual == b.residual > 100 * sim.u
        mark = sim.model.markets[ETH].price
        expected_booked = min(b.residual, mark * WAD // 10**36)
        assert b.booked == expected_booked
        assert (liq.socialized.booked if liq.socialized else 0) == expected_booked
        assert liq.recorded.residual == b.residual - expected_booked
        assert sim.ch.bad_debt() == sim.model.bad_debt == b.residual - expected_booked
        assert abs(sim.lens.markets(ETH).short_index) <= mark * WAD
        after_poison_everything_works(sim, long=True)


@given(
    decimals=st.sampled_from([6, 18]),
    dust=st.one_of(st.integers(1, 10), st.integers(1, 10**16)),
    gap_bps=st.integers(2_300, 6_000),
    long=st.booleans(),
)
@settings(max_examples=by_profile(quick=10, ci=40), deadline=None, suppress_health_check=list(HealthCheck))
def test_open_interest__dust_and_huge_residuals_never_block(dust_books, decimals, dust, gap_bps, long):
    """Property: whatever the dust open interest, the residual and the decimals,
    the liquidation goes through, booked + bad debt == residual, no side index
    leaves +-MAX_INDEX, and later trades and socializations still work."""
    sim = dust_books(decimals)
    with sim.anchor():
        liq = poison(sim, dust, gap_bps if long else gap_bps * 2, long)
        b = liq.model.bankruptcy
        booked = liq.socialized.booked if liq.socialized else 0
        recorded = liq.recorded.residual if liq.recorded else 0
        assert booked == b.booked and booked + recorded == liq.bankrupt.residual == b.residual
        for side in ("long_index", "short_index"):
            assert abs(getattr(sim.lens.markets(ETH), side)) <= MAX_INDEX
        after_poison_everything_works(sim, long)
