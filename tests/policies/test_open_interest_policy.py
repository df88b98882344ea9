"""OPEN_INTEREST policy: the opposite side pays ceil(R * 1e36 / OI) per contract.

The residual moves the funding index of the side opposite the bankrupt
position by ``per_contract = ceil(R * 1e36 / OI)``; each position on that side
pays ``ceil(|s| * per_contract / 1e36)`` with its funding, the same side as the
bankrupt position pays nothing. Chain and exact model agree to the unit.
The population (EQUITY markets) is switched to OPEN_INTEREST inside the
snapshot; the funding rate is 0, so every funding movement is the policy's.
"""

import pytest

VICTIM = 9_100_001


@pytest.mark.parametrize("decimals", [6, 18], ids=["dec6", "dec18"])
@pytest.mark.parametrize("bankrupt_side", ["long", "short"])
def test_open_interest__opposite_side_pays_exactly_its_share(populations, h, decimals, bankrupt_side):
    long = bankrupt_side == "long"
    pop = populations[decimals]
    with pop.at(100) as sim:
        u = sim.u
        members = pop.members[:100]
        sim.set_policy(h.ETH, h.OPEN_INTEREST)
        sim.fund_vault(3 * u)
        victim = sim.victim(VICTIM, h.ETH, 4_000 * u + 77, 950, long=long).address
        sim.move(h.ETH, -1_500 if long else 1_500)
        accounts = list(dict.fromkeys([*members, sim.mm.address, sim.liquidator, victim]))
        sizes = {a: sim.ch.positions(a, h.ETH)[0] for a in accounts}
        collateral_before = {a: sim.ch.collateral(a) for a in accounts}
        index_before = sim.ch.markets(h.ETH).long_index if not long else sim.ch.markets(h.ETH).short_index
        open_interest = sim.ch.markets(h.ETH).long_open_interest

        liq = sim.liquidate(victim, h.ETH)
        b, s = liq.model.bankruptcy, liq.socialized
        residual = b.residual
        assert residual == liq.bankrupt.residual > 0 and liq.bankrupt.insurance_paid == 3 * u
        # the liquidator took the victim's side over: open interest is unchanged
        assert sim.ch.markets(h.ETH).long_open_interest == open_interest
        per_contract = -(-residual * 10**36 // open_interest)
        assert s.loss_policy == h.OPEN_INTEREST and s.booked == residual == b.booked
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
            size = sim.ch.positions(a, h.ETH)[0]
            _, _, logs = sim.settle(a)
            funding = [e.amount for e in h.by_name(logs, "FundingSettled") if e.market == h.ETH]
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
def test_open_interest__no_open_interest_left_records_the_residual(h, decimals):
    """The liquidator was the victim's only counterparty: taking the position over nets
    the market to zero open interest. The residual is recorded, the liquidation succeeds."""
    sim = h.Sim(decimals, policies=(h.OPEN_INTEREST, h.OPEN_INTEREST))
    u = sim.u
    with sim.active():
        victim = h.key(VICTIM)
        sim.fund(victim.address, 2_000 * u)
        size = 2_000 * u * 9 * h.WAD // sim.model.markets[h.ETH].price
        sim.trade(victim, sim.liq_key, h.ETH, size, sim.model.markets[h.ETH].price)
        sim.move(h.ETH, -2_000)
        funding_pool, indexes = sim.ch.funding_pool(), (sim.ch.markets(h.ETH).long_index, sim.ch.markets(h.ETH).short_index)
        liq = sim.liquidate(victim.address, h.ETH)
        b = liq.model.bankruptcy
        assert sim.ch.markets(h.ETH).long_open_interest == 0
        assert liq.socialized is None and b.booked == 0
        assert liq.recorded is not None and liq.recorded.loss_policy == h.OPEN_INTEREST
        assert liq.recorded.residual == liq.bankrupt.residual == b.residual > 0
        assert sim.ch.bad_debt() == b.residual == sim.model.bad_debt
        assert sim.ch.funding_pool() == funding_pool
        assert (sim.ch.markets(h.ETH).long_index, sim.ch.markets(h.ETH).short_index) == indexes
        assert sim.ch.positions(victim.address, h.ETH)[0] == 0 and sim.ch.collateral(victim.address) == 0
        assert sim.ch.markets(h.ETH).socialized == 0
