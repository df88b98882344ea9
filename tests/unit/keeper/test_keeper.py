"""Keeper.vy: marks and liquidations in one transaction (revm, through perpclear.case).

The window it closes (docs/loss-policies.md, "The window before a bankruptcy"):
after a mark that makes V bankrupt and before V's liquidation, a flat
depositor C could withdraw and leave its share of V's residual to the others.
With `run`, the mark and the liquidation are one transaction, so C pays its
share. Every entry point's refusals are tested too.
"""

import pytest

from perpclear.case import Case
from perpclear.deployment import HUGE
from perpclear.engine import EngineError, Tx

ETH = "ETH-PERP"


def book(policy: str = "EQUITY") -> Case:
    """V (1,100) long 5 ETH at 2,000 from the market maker B; C a flat depositor;
    the keeper contract holds 50,000 of margin; the vault holds 100."""
    case = Case(policy=policy)
    case.fund_vault(100)
    case.deposit("V", 1_100)
    case.deposit("B", 50_000)
    case.deposit("C", 10_000)
    case.deposit("D", 10_000)
    case.fund_keeper(50_000)
    case.trade(buyer="V", seller="B", market=ETH, size=5, price=2_000)
    case.trade(buyer="D", seller="B", market=ETH, size=1, price=2_000)
    return case


def named(events, name):
    return [ev for ev in events if ev.name == name]


def send(case: Case, sender, fn: str, *args, contract: str | None = None):
    return case.engine.send([Tx(sender, contract or case.d.keeper, fn, tuple(args))])[0]


def test_keeper__mark_and_liquidation_in_one_transaction_leave_no_window():
    """The crash to 1,700 makes V bankrupt (equity about -400, vault 100). Sent apart, C
    withdraws in between and pays nothing; sent by `run`, C pays its share of the
    residual, the same as when the keeper is simply first, and cannot withdraw it."""
    apart = book()
    apart.mark(ETH, 1_700)
    apart._send(Tx(apart.account("C"), apart.d.clearing_house, "withdraw", (apart.units(10_000),)))
    apart.keeper_run({}, ["V"])
    paid_apart = {c.name: c.total for c in apart.charges()}
    assert "C" not in paid_apart and paid_apart["B"] > 0

    together = book()
    events = together.keeper_run({ETH: 1_700}, ["V"])
    (price,) = named(events, "PriceUpdated")
    (liquidated,) = named(events, "PositionLiquidated")
    (social,) = named(events, "LossSocialized")
    assert price.args["price"] == together.units(1_700) and liquidated.args["account"] == together.address("V")
    assert liquidated.args["liquidator"] == together.d.keeper and social.args["residual"] > together.units(250)
    owed = together.view("pending_loss_charge", "C")
    assert owed > 0
    with pytest.raises(EngineError, match="clearing: amount exceeds collateral"):
        together._send(Tx(together.account("C"), together.d.clearing_house, "withdraw", (together.units(10_000),)))
    paid = {c.name: c.total for c in together.charges()}
    assert paid["C"] == owed
    # C's share moved back onto the others: the payers that stayed paid more apart
    assert paid_apart["B"] > paid["B"] and paid_apart["D"] > paid["D"]
    # the keeper contract, which took V's position over, pays its own share too
    assert sum(paid.values()) + together.view("pending_loss_charge", together.d.keeper) >= social.args["booked"]


def test_keeper__skips_what_the_clearing_house_refuses_and_stops_at_the_limit():
    """Targets in order, each once: a healthy account is skipped with the clearing
    house's reason; `max_liquidations` bounds the successes; the marks land either way."""
    case = book()
    case.deposit("W", 1_100)
    case.trade(buyer="W", seller="B", market=ETH, size=5, price=2_000)
    events = case.keeper_run({ETH: 1_820}, ["C", "D", "V", "W"], max_liquidations=1)
    skipped = named(events, "TargetSkipped")
    assert [ev.args["account"] for ev in skipped] == [case.address("C"), case.address("D")]
    assert all(b"clearing: no position" in ev.args["reason"] or b"clearing: not liquidatable" in ev.args["reason"]
               for ev in skipped)
    assert [ev.args["account"] for ev in named(events, "PositionLiquidated")] == [case.address("V")]
    (run,) = named(events, "Run")
    assert (run.args["marks"], run.args["liquidated"], run.args["skipped"]) == (1, 1, 2)
    assert case.view("is_liquidatable", "W")  # left for the next run: the limit was one
    assert case.engine.call(case.d.oracle, "last_price", 0)[0] == case.units(1_820)


def test_keeper__a_bad_mark_reverts_the_whole_run():
    case = book()
    with pytest.raises(EngineError, match="oracle: duplicate market"):
        send(case, case.roles.keeper, "run", [0, 0], [case.units(1_700), case.units(1_700)],
             [(case.address("V"), 0, HUGE)], 1)
    assert case.engine.call(case.d.oracle, "last_price", 0)[0] == case.units(2_000)
    assert case.view("positions", "V", 0)[0] != 0


def test_keeper__deployment_liquidate_raises_the_refusal():
    case = book()
    with pytest.raises(EngineError, match="clearing: not liquidatable"):
        case.d.liquidate(case.address("V"), 0)


def test_keeper__only_operators_run():
    case = book()
    for stranger in (case.account("C"), case.roles.admin, case.roles.liquidator):
        with pytest.raises(EngineError, match="keeper: not operator"):
            send(case, stranger, "run", [0], [case.units(1_700)], [], 0)


def test_keeper__operators_are_granted_through_the_timelock_and_revoked_at_once():
    case = book()
    admin, c = case.roles.admin, case.account("C")
    with pytest.raises(EngineError, match="ownership: not owner"):
        send(case, c, "set_operator", c.address, True)
    with pytest.raises(EngineError, match="keeper: zero address"):
        send(case, admin, "set_operator", "0x" + "00" * 20, True)
    send(case, admin, "set_delay", case.d.keeper, 3_600, contract=case.d.timelock)
    with pytest.raises(EngineError, match="timelock"):
        send(case, admin, "set_operator", c.address, True)
    (revoked,) = named(send(case, admin, "set_operator", case.roles.keeper.address, False), "OperatorSet")
    assert revoked.args["allowed"] is False
    assert not case.engine.call(case.d.keeper, "operators", case.roles.keeper.address)
    with pytest.raises(EngineError, match="keeper: not operator"):
        case.mark(ETH, 1_900)


def test_keeper__margin_moves_only_by_the_owner_and_within_the_clearing_house_rules():
    case = book()
    admin, c = case.roles.admin, case.account("C")
    u = case.units(1)
    with pytest.raises(EngineError, match="ownership: not owner"):
        send(case, c, "fund", u)
    with pytest.raises(EngineError, match="ownership: not owner"):
        send(case, c, "defund", u, c.address)
    with pytest.raises(EngineError, match="keeper: zero amount"):
        send(case, admin, "fund", 0)
    with pytest.raises(EngineError, match="keeper: zero address"):
        send(case, admin, "defund", u, "0x" + "00" * 20)
    with pytest.raises(EngineError, match="clearing:"):
        send(case, admin, "defund", case.units(50_001), admin.address)
    before = case.engine.call(case.d.token, "balanceOf", c.address)
    send(case, admin, "defund", case.units(1_000), c.address)
    assert case.engine.call(case.d.token, "balanceOf", c.address) == before + case.units(1_000)
    assert case.engine.call(case.d.clearing_house, "collateral", case.d.keeper) == case.units(49_000)


def test_keeper__wiring():
    """Deployed with the system: the clearing house's oracle and token, the keeper
    role as its operator, a price keeper of the oracle and a keeper of the clearing house."""
    case = book()
    d, e = case.d, case.engine
    assert (e.call(d.keeper, "clearing_house"), e.call(d.keeper, "oracle"), e.call(d.keeper, "token")) == (
        d.clearing_house, d.oracle, d.token)
    assert e.call(d.keeper, "operators", case.roles.keeper.address)
    assert e.call(d.oracle, "keepers", d.keeper) and e.call(d.clearing_house, "is_keeper", d.keeper)
    assert e.call(d.keeper, "owner") == case.roles.admin.address


def test_keeper__profit_clawback_and_take_over_in_one_transaction():
    """PROFIT: the crash to 1,700 leaves V about 400 beyond the vault. The keeper
    contract's `clawback` charges it to the accounts in profit (B short 6 at 2,000)
    and takes V's long over in the same transaction: V ends flat at zero, the
    vault pays what it covers, B pays exactly R, nothing is bad debt."""
    case = book("PROFIT")
    case.mark(ETH, 1_700)
    equity = case.equity("V")
    events = case.clawback("V")
    (run,) = named(events, "ClawbackRun")
    (charged,) = named(events, "ProfitCharged")
    (liquidated,) = named(events, "PositionLiquidated")
    (bankrupt,) = named(events, "AccountBankrupt")
    assert run.args["equity"] == equity and run.args["residual"] == -equity - case.units(100)
    assert charged.args["payer"] == case.address("B") and charged.args["amount"] == run.args["residual"]
    assert liquidated.args["liquidator"] == case.d.keeper and liquidated.args["account"] == case.address("V")
    assert (bankrupt.args["insurance_paid"], bankrupt.args["residual"]) == (case.units(100), 0)
    assert case.view("bad_debt") == 0 and case.view("collateral", "V") == 0
    assert {c.name: c.profit for c in case.charges()} == {"B": run.args["residual"]}


def test_keeper__profit_clawback_refusals():
    """Operators only; the deleverager's refusals (here: not bankrupt) revert the whole transaction."""
    case = book("PROFIT")
    case.mark(ETH, 1_700)
    with pytest.raises(EngineError, match="keeper: not operator"):
        send(case, case.account("C"), "clawback", case.address("V"), 0, [case.address("B")])
    with pytest.raises(EngineError, match="adl: not bankrupt"):
        case.clawback("D")
