"""Gas of every clearing operation, compared exactly with docs/gas.json.

Gas is deterministic: the same transactions on the same contracts cost the same
on every run, so this test compares to the unit. When a contract change moves
a figure on purpose, regenerate the table with ``make gas-table`` and review
the diff of docs/gas.json and docs/gas.md.
"""

import json
import os
from pathlib import Path

import pytest

from perpclear.model import POLICY_ADL, POLICY_PROFIT, WAD

GAS_JSON = Path(__file__).resolve().parents[2] / "docs" / "gas.json"
GAS_MD = GAS_JSON.with_suffix(".md")
# The table before the storage and read work of the clearing house began (main at b887782).
GAS_BEFORE = GAS_JSON.with_name("gas-before.json")
# Whole-transaction targets of the clearing house's rebuild, where one applies.
# Opening is measured three ways: the first fill of the system, two new
# accounts in a mature system, and accounts opening again in a market they
# traded before (the steady state: only this one writes no word from zero).
TARGETS = {
    "settle (both open)": 210_000,
    "settle (both open: new accounts, mature system)": 210_000,
    "settle (both reopen: accounts that traded the market before)": 210_000,
    "settle (both increase)": 180_000,
    "liquidate (bankrupt: insurance draw + first EQUITY socialization)": 180_000,
    "liquidate (bankrupt: empty vault + another EQUITY socialization)": 180_000,
}
# Targets still missed, each with where its gas goes (docs/gas.md, "Targets").
MISSED = {
    "settle (both open)": "the first fill of the system writes its fee word from zero and, per side, a "
    "fresh position word and the trader's first nonce word (22,100 each: a trader's next 127 orders share "
    "it); the order book's own execution (signatures 6,000) comes on top of the 21,000 base and the calldata",
    "settle (both open: new accounts, mature system)": "per side, four words written from zero (22,100 "
    "each): the position word, its funding and EQUITY snapshots (non-zero in a mature system) and the "
    "trader's first nonce word; each is written once in an account's life in a market",
    "liquidate (bankrupt: insurance draw + first EQUITY socialization)": "the EQUITY socialization "
    "rewrites K, G and both side indexes of every active market, the waterfall's round trip to the "
    "vault and the token (cover, transfer, balance checks) costs about 25k, and asking the market's "
    "policy contract how to place the residual (a static call to a cold account) about 5.6k",
    "liquidate (bankrupt: empty vault + another EQUITY socialization)": "as the first: the socialization's "
    "writes, the vault round trip and the policy's answer",
}
UPDATE = os.environ.get("PERPCLEAR_UPDATE_GAS") == "1"
ETH = 0
# A fixed expiry keeps signatures, hence calldata, hence gas, identical on every run.
EXPIRY = 2**40


def next_second(chain) -> None:
    """Mines the next transaction one second after the head block. The embedded
    chain stamps blocks with the wall clock, so two transactions may share a
    second or not, and the clearing house skips a market's funding accrual
    when no time has passed: gas then depends on the machine's speed. A
    measured transaction always sees at least one second pass."""
    chain.pending_timestamp = chain.blocks.head.timestamp + 1


def gas_table(measured: dict, before: dict) -> str:
    rows = []
    for name, gas in measured.items():
        old = before.get(name)
        change = f"{(gas - old) / old:+.1%}" if old else ""
        target = f"{TARGETS[name]:,}" if name in TARGETS else ""
        rows.append(f"| {name} | {f'{old:,}' if old else 'new'} | {gas:,} | {change} | {target} |")
    targets = [f"- **{name}**: {measured[name]:,} against {target:,}: "
               + (f"missed by {measured[name] - target:,}. Where it goes: {MISSED[name]}." if name in MISSED else "met.")
               for name, target in TARGETS.items()]
    return (
        "# Gas table\n\nMeasured by `tests/gas/test_gas.py` on ape's embedded chain (6-decimal\n"
        "collateral, two listed markets, one position per account). Regenerate with\n"
        "`make gas-table`; the test fails when a figure drifts from this table.\n"
        "\"Before\" is the table before the clearing house's storage and read work\n"
        "(`docs/gas-before.json`); targets are whole transactions.\n\n"
        "| operation | before | gas used (whole transaction) | change | target |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "## Targets\n\nEach is asserted by `test_gas__target`; a missed one is a strict xfail.\n\n"
        + "\n".join(targets) + "\n"
    )


# The gas table's system is deployed by an account no other test uses, so its
# nonce, and so every contract address, is the same in every run whatever ran
# before on this worker. The order book's address is in the EIP-712 domain: it
# moves the signatures, so the zero bytes of a fill's calldata, so its gas.
DEPLOYER = 19
ORDER_BOOK = "0x5095d3313C76E8d29163e40a0223A5816a8037D8"


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
def test_gas__every_operation_matches_the_published_table(make_system, accounts, traders, liquidator, insurer, chain):
    system = make_system(owner=accounts[DEPLOYER])
    assert system.order_book.address == ORDER_BOOK, "the gas table was measured with the order book at ORDER_BOOK"
    s, ch, u = system, system.clearing_house, system.unit
    alice, bob, carol, dave, erin = traders[:5]
    measured = {}

    s.fund_vault(insurer, 10 * u)
    s.fund(alice, 1_100 * u, deposit=0)
    next_second(chain)
    measured["deposit (first)"] = ch.deposit(1_000 * u, sender=alice).gas_used
    next_second(chain)
    measured["deposit (again)"] = ch.deposit(100 * u, sender=alice).gas_used
    s.fund(bob, 6_000 * u)
    s.fund(carol, 720 * u)
    s.fund(dave, 3_000 * u)
    s.fund(erin, 400 * u)
    s.fund(liquidator, 20_000 * u)

    next_second(chain)
    measured["settle (both open)"] = s.trade(alice, bob, ETH, 5 * WAD, 2_000 * u, expiry=EXPIRY).gas_used
    s.trade(carol, dave, ETH, 2 * WAD, 2_000 * u, expiry=EXPIRY)
    s.trade(erin, dave, ETH, WAD, 2_000 * u, expiry=EXPIRY)
    next_second(chain)
    measured["settle (both increase)"] = s.trade(carol, dave, ETH, WAD // 10, 2_000 * u, expiry=EXPIRY).gas_used
    next_second(chain)
    measured["settle (both reduce)"] = s.trade(dave, carol, ETH, WAD // 10, 2_000 * u, expiry=EXPIRY).gas_used
    next_second(chain)
    measured["set_funding_rate"] = ch.set_funding_rate(ETH, 10**14 // 3_600, sender=s.keeper).gas_used
    chain.pending_timestamp += 3_600
    s.set_mark(ETH, 2_000 * u)
    next_second(chain)
    measured["settle_funding (one position)"] = ch.settle_funding(bob, sender=bob).gas_used
    next_second(chain)
    measured["withdraw (with a position)"] = ch.withdraw(10 * u, sender=bob).gas_used

    s.set_mark(ETH, 1_850 * u)
    next_second(chain)
    measured["liquidate (partial)"] = ch.liquidate(alice, ETH, 5 * WAD, False, sender=liquidator).gas_used
    s.set_mark(ETH, 1_740 * u)
    next_second(chain)
    measured["liquidate (full)"] = ch.liquidate(alice, ETH, 5 * WAD, False, sender=liquidator).gas_used
    s.set_mark(ETH, 1_550 * u)
    next_second(chain)
    receipt = ch.liquidate(carol, ETH, 5 * WAD, False, sender=liquidator)
    assert ch.AccountBankrupt.from_receipt(receipt)[0].residual > 0
    assert ch.LossSocialized.from_receipt(receipt)[0].booked > 0
    measured["liquidate (bankrupt: insurance draw + first EQUITY socialization)"] = receipt.gas_used
    next_second(chain)
    receipt = ch.liquidate(erin, ETH, 5 * WAD, False, sender=liquidator)
    assert ch.LossSocialized.from_receipt(receipt)[0].booked > 0
    measured["liquidate (bankrupt: empty vault + another EQUITY socialization)"] = receipt.gas_used
    next_second(chain)
    measured["deposit (settles 2 pending socializations)"] = ch.deposit(u, sender=bob).gas_used
    next_second(chain)
    measured["deposit (nothing pending)"] = ch.deposit(u, sender=bob).gas_used

    def crash(long, shorts):
        """A long of 4 ETH on 1,000 bought from two shorts (5,000 each) at 2,000 gaps to 1,650."""
        s.set_mark(ETH, 2_000 * u)
        for account, amount in ((long, 1_000), (shorts[0], 5_000), (shorts[1], 5_000)):
            s.fund(account, amount * u)
        for short in shorts:
            s.trade(long, short, ETH, 2 * WAD, 2_000 * u, expiry=EXPIRY)
        s.set_mark(ETH, 1_650 * u)
        next_second(chain)
        return sorted((a.address for a in shorts), key=lambda a: int(a, 16))

    # ADL: the vault is empty; the deleverager closes the long against both shorts.
    frank, grace, heidi = traders[5:8]
    ch.set_loss_policy(ETH, POLICY_ADL, sender=s.admin)
    crash(frank, [grace, heidi])
    receipt = s.deleverager.deleverage(frank, ETH, [grace, heidi], sender=s.keeper)
    assert s.deleverager.DeleverageRun.from_receipt(receipt)[0].remaining == 0
    measured["deleverage (2 counterparties, closes the position)"] = receipt.gas_used

    # PROFIT: the clawback charges both shorts (ivan's second short is erin, flat
    # since her bankruptcy), then the keeper takes the long over.
    ivan, judy = traders[8:10]
    ch.set_loss_policy(ETH, POLICY_PROFIT, sender=s.admin)
    ch.set_funding_rate(ETH, 0, sender=s.keeper)  # no funding owed between the clawback and the take-over
    s.fund(s.keeper, 10_000 * u)
    bad_debt = ch.bad_debt()
    payers = crash(ivan, [judy, erin])
    receipt = s.profit_policy.clawback(ivan, ETH, payers, sender=s.keeper)
    run = s.profit_policy.ClawbackRun.from_receipt(receipt)[0]
    assert run.charged == run.residual > 0
    measured["clawback (2 accounts in profit charged)"] = receipt.gas_used
    next_second(chain)
    receipt = ch.liquidate(ivan, ETH, 4 * WAD, False, sender=s.keeper)
    assert ch.bad_debt() == bad_debt and ch.positions(ivan, ETH).size == 0  # the payers covered R
    measured["liquidate (by the keeper after a clawback)"] = receipt.gas_used
    # The first book again, through the keeper contract: the clawback and the
    # take-over in one transaction.
    s.fund_keeper(10_000 * u)
    payers = crash(frank, [grace, heidi])
    receipt = s.keeper_contract.clawback(frank, ETH, payers, sender=s.keeper)
    assert ch.bad_debt() == bad_debt and ch.positions(frank, ETH).size == 0
    measured["keeper clawback: 2 accounts charged + take-over (one transaction)"] = receipt.gas_used

    # A mature system (fees, open notional, funding and EQUITY indexes all
    # nonzero): two new accounts open against each other, close, and reopen.
    # A new position writes three fresh words per side (size and notional, and
    # its funding and EQUITY snapshots); a reopened one finds them nonzero
    # (a closed position's word keeps its USED bit).
    oscar, peggy = accounts[16], accounts[17]
    s.fund(oscar, 1_000 * u)
    s.fund(peggy, 1_000 * u)
    assert ch.protocol_fees() > 0 and ch.total_open_notional() != 0 and s.lens.markets(ETH).long_index != 0
    next_second(chain)
    measured["settle (both open: new accounts, mature system)"] = s.trade(
        oscar, peggy, ETH, WAD, 1_650 * u, expiry=EXPIRY).gas_used
    s.trade(peggy, oscar, ETH, WAD, 1_650 * u, expiry=EXPIRY)
    next_second(chain)
    measured["settle (both reopen: accounts that traded the market before)"] = s.trade(
        oscar, peggy, ETH, WAD, 1_650 * u, expiry=EXPIRY).gas_used

    if UPDATE:
        GAS_JSON.write_text(json.dumps(measured, indent=2) + "\n")
        GAS_MD.write_text(gas_table(measured, json.loads(GAS_BEFORE.read_text())))
    assert measured == json.loads(GAS_JSON.read_text())


@pytest.mark.parametrize("name", TARGETS)
def test_gas__target(name, request):
    """Each target against the published figure (which the test above pins to
    the unit). A missed target is a strict xfail naming where the gas goes."""
    if name in MISSED:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"missed: {MISSED[name]}"))
    gas = json.loads(GAS_JSON.read_text())[name]
    assert gas <= TARGETS[name], f"{name}: {gas:,} gas, target {TARGETS[name]:,}"
