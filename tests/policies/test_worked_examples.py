"""The worked examples of docs/loss-policies.md, played on the embedded chain
(EQUITY, OPEN_INTEREST, ADL and PROFIT).

A deposits 1,000 and buys 3 ETH from B and 2 ETH from C at 2,000 (no fees); D
holds 1,000 and no position; the keeper L holds 5,000; the vault holds 100.
ETH gaps to 1,700: A's equity is -500, L takes over A's 5 ETH, the vault pays
100 and the residual of 400 goes to the market's loss policy.
"""

import pytest

from perpclear.model import WAD, MarketParams
from perpclear.system import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, MarketSpec
from perpclear.units import EQUITY_SCALE, POLICY_PROFIT

NO_FEES = MarketParams(maker_fee_bps=0, taker_fee_bps=0)


def gapped(make_system, traders, liquidator, insurer, policy):
    """The worked example up to the gap: A long 5 (3 from B, 2 from C) at 2,000
    on 1,000, the mark at 1,700, A's equity -500; the vault holds 100."""
    system = make_system(markets=(MarketSpec("ETH-PERP", 2_000, NO_FEES, policy),))
    u = system.unit
    a, b, c, d = traders[:4]
    system.fund_vault(insurer, 100 * u)
    for account, amount in ((a, 1_000), (b, 4_000), (c, 3_000), (d, 1_000), (liquidator, 5_000)):
        system.fund(account, amount * u)
    system.trade(a, b, 0, 3 * WAD, 2_000 * u)
    system.trade(a, c, 0, 2 * WAD, 2_000 * u)
    system.set_mark(0, 1_700 * u)
    assert system.clearing_house.health(a).equity == -500 * u
    return system


def crash(make_system, traders, liquidator, insurer, policy):
    system = gapped(make_system, traders, liquidator, insurer, policy)
    ch, u = system.clearing_house, system.unit
    a, b, c, d = traders[:4]
    receipt = ch.liquidate(a, 0, 5 * WAD, False, sender=liquidator)
    [bankrupt] = ch.AccountBankrupt.from_receipt(receipt)
    assert (bankrupt.deficit, bankrupt.insurance_paid, bankrupt.residual) == (500 * u, 100 * u, 400 * u)
    [socialized] = ch.LossSocialized.from_receipt(receipt)
    assert socialized.booked == socialized.residual == 400 * u
    assert ch.bad_debt() == 0
    return system, (b, c, d, liquidator), socialized


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_worked_example__equity(make_system, traders, liquidator, insurer):
    system, (b, c, d, keeper), socialized = crash(make_system, traders, liquidator, insurer, POLICY_EQUITY)
    ch = system.clearing_house
    # D = 4,900 + 3,600 + 1,000 + 5,000 = 14,500; r = 400.000001 / 14,500
    assert socialized.basis == 14_500_000_000
    assert socialized.rate == -(-(400_000_001 * EQUITY_SCALE) // 14_500_000_000)  # rounded up
    expected = {b: 135_172_415, c: 99_310_346, d: 27_586_207, keeper: 137_931_035}
    for account, charge in expected.items():
        before = ch.collateral(account)
        receipt = ch.settle_funding(account, sender=account)  # any touch settles the charge
        [settled] = ch.LossSettled.from_receipt(receipt)
        assert settled.charge == charge == before - ch.collateral(account)
    assert sum(expected.values()) == 400_000_003  # three units of dust
    assert ch.loss_receivable() == -3


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_worked_example__open_interest(make_system, traders, liquidator, insurer):
    system, (b, c, d, keeper), socialized = crash(make_system, traders, liquidator, insurer, POLICY_OPEN_INTEREST)
    ch, u = system.clearing_house, system.unit
    # 400 over 5 short contracts: 80 each; B (3) pays 240, C (2) pays 160.
    assert socialized.basis == 5 * WAD
    expected = {b: 240 * u, c: 160 * u, d: 0, keeper: 0}
    for account, charge in expected.items():
        assert system.lens.pending_funding(account, 0) == (charge if account in (b, c) else 0)
        before = ch.collateral(account)
        ch.settle_funding(account, sender=account)
        assert before - ch.collateral(account) == charge
    assert ch.funding_pool() == 0  # advanced 400, paid back 400


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_worked_example__adl(make_system, traders, liquidator, insurer, keeper):
    system = gapped(make_system, traders, liquidator, insurer, POLICY_ADL)
    ch, adl, vault, u = system.clearing_house, system.deleverager, system.vault, system.unit
    a, b, c, d = traders[:4]
    # B: PnL% 900 / 6,000 = 15 %, leverage 5,100 / 4,900; C: 15 %, 3,400 / 3,600.
    assert adl.rank(b, 0) == 156_122_448_979_591_836
    assert adl.rank(c, 0) == 141_666_666_666_666_666
    assert adl.rank(d, 0) == adl.rank(a, 0) == 0

    receipt = adl.deleverage(a, 0, [b, c], sender=keeper)

    # R = 500 - 100 = 400; gap = ceil(400 / 5 ETH) = 80 per ETH, whatever the list.
    [run] = adl.DeleverageRun.from_receipt(receipt)
    assert (run.equity, run.insurance, run.residual) == (-500 * u, 100 * u, 400 * u)
    assert (run.price, run.mark, run.closed, run.remaining) == (1_780 * u, 1_700 * u, 5 * WAD, 0)
    fills = [(e.counterparty, e.size, e.price) for e in adl.Deleveraged.from_receipt(receipt)]
    assert fills == [(b.address, 3 * WAD, 1_780 * u), (c.address, 2 * WAD, 1_780 * u)]
    # B pays 240 beyond the mark, C 160: exactly R.
    assert ch.collateral(b) == 4_660 * u and ch.positions(b, 0).size == 0
    assert ch.collateral(c) == 3_440 * u and ch.positions(c, 0).size == 0
    # A ends at -100: the vault pays it.
    [bankrupt] = ch.AccountBankrupt.from_receipt(receipt)
    assert (bankrupt.deficit, bankrupt.insurance_paid, bankrupt.residual) == (100 * u, 100 * u, 0)
    assert ch.collateral(a) == 0 and ch.bad_debt() == 0
    assert system.token.balanceOf(vault) == 0
    assert ch.health(d).equity == 1_000 * u and ch.health(liquidator).equity == 5_000 * u  # untouched


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_worked_example__profit(make_system, traders, liquidator, insurer, keeper):
    system = gapped(make_system, traders, liquidator, insurer, POLICY_PROFIT)
    ch, profit, u = system.clearing_house, system.profit_policy, system.unit
    a, b, c, d = traders[:4]
    # Everyone with a position, in address order: B's profit 900, C's 600; P = 1,500.
    candidates = sorted([b.address, c.address], key=lambda x: int(x, 16))
    receipt = profit.clawback(a, 0, candidates, sender=keeper)
    [run] = profit.ClawbackRun.from_receipt(receipt)
    assert (run.equity, run.insurance, run.residual, run.profit, run.charged) == (
        -500 * u, 100 * u, 400 * u, 1_500 * u, 400 * u)
    charged = {e.payer: (e.amount, e.profit) for e in profit.ProfitCharged.from_receipt(receipt)}
    # R * profit / P: B 400 * 900 / 1,500 = 240, C 160, exactly R; positions stay open.
    assert charged == {b.address: (240 * u, 900 * u), c.address: (160 * u, 600 * u)}
    # Out of their profit: the cost basis rises by the charge, collateral stays.
    assert ch.collateral(b) == 4_000 * u and tuple(ch.positions(b, 0))[:2] == (-3 * WAD, -5_760 * u)
    assert ch.collateral(c) == 3_000 * u and tuple(ch.positions(c, 0))[:2] == (-2 * WAD, -3_840 * u)
    assert system.lens.equity(b) == 4_660 * u and system.lens.equity(c) == 3_440 * u
    # The keeper takes A over at the mark: A ends at -100, which the vault pays.
    system.fund(keeper, 5_000 * u)
    receipt = ch.liquidate(a, 0, 5 * WAD, False, sender=keeper)
    [bankrupt] = ch.AccountBankrupt.from_receipt(receipt)
    assert (bankrupt.deficit, bankrupt.insurance_paid, bankrupt.residual) == (100 * u, 100 * u, 0)
    assert ch.collateral(a) == 0 and ch.bad_debt() == 0
    assert ch.health(d).equity == 1_000 * u and ch.health(liquidator).equity == 5_000 * u  # untouched
