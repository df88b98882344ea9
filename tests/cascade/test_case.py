"""perpclear.case.Case: the README's custom case, on revm and on anvil.

The residual after the vault (802 tokens here) is paid exactly as each policy
says: EQUITY in proportion to equity at the socialization, OPEN_INTEREST 5:2
by the shorts' contracts, ADL by the first in the queue at the bankruptcy
price; the same case gives the same charges on both engines.
"""

import re
from fractions import Fraction
from pathlib import Path

import pytest
from eth_account import Account

from perpclear.bench import anvil_node
from perpclear.case import Case, exact_units
from perpclear.engine import ChainEngine

ROOT = Path(__file__).resolve().parents[2]
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's first dev account


def play(case: Case) -> tuple[Case, int]:
    """The README's case; returns it with the residual the vault left."""
    case.fund_vault(100)
    case.deposit("A", 1_100)
    for name in ("B", "C", "D"):
        case.deposit(name, 20_000)
    case.trade(buyer="A", seller="B", market="ETH-PERP", size=5, price=2_000)
    case.trade(buyer="D", seller="C", market="ETH-PERP", size=2, price=2_000)
    case.mark("ETH-PERP", 1_600)
    policy = case.scenario.loss_policy
    if policy == "ADL":
        events, run = case.deleverage("A"), "DeleverageRun"
    elif policy == "PROFIT":  # the keeper contract claws back and takes A over
        case.fund_keeper(10_000)
        events, run = case.clawback("A"), "ClawbackRun"
    else:
        events, run = case.liquidate("A", by="C"), "AccountBankrupt"
    return case, next(ev for ev in events if ev.name == run).args["residual"]


@pytest.mark.parametrize("policy", ["EQUITY", "OPEN_INTEREST", "ADL"])
def test_case__each_policy_places_the_residual(policy):
    case, residual = play(Case(policy=policy))
    u = case.scenario.unit
    assert residual == 802 * u  # 902 of deficit, 100 from the vault
    charges = {c.name: c for c in case.charges()}
    total = sum(c.total for c in charges.values())
    if policy == "EQUITY":
        assert set(charges) == {"B", "C", "D"} and all(c.total == c.equity for c in charges.values())
        assert residual <= total <= residual + 3  # each payer's share rounded up
        # Proportional to equity at the socialization: the same rate for all (to a unit).
        before = {n: case.equity(n) + c.total for n, c in charges.items()}
        rates = [Fraction(c.total, before[n]) for n, c in charges.items()]
        assert max(rates) - min(rates) < Fraction(2, min(before.values()))
    elif policy == "OPEN_INTEREST":
        assert set(charges) == {"B", "C"} and all(c.total == c.open_interest for c in charges.values())
        assert residual <= total <= residual + 2
        assert abs(charges["B"].total * 2 - charges["C"].total * 5) <= 7  # 5:2, by contracts
    else:
        assert set(charges) == {"B"} and charges["B"].adl == total
        assert residual <= total <= residual + 1


def test_case__readme_example_runs_and_prints_its_table(capsys):
    text = (ROOT / "README.md").read_text()
    code, shown = re.search(r"<!-- case-example -->\n```python\n(.*?)```\n\n```text\n(.*?)```", text, re.S).groups()
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == shown


def test_case__same_charges_on_anvil():
    on_revm, _ = play(Case(policy="OPEN_INTEREST"))
    with anvil_node() as w3:
        on_anvil, _ = play(Case(policy="OPEN_INTEREST", engine=ChainEngine(w3, Account.from_key(ANVIL_KEY))))
        assert on_anvil.charges() == on_revm.charges()
        assert on_anvil.equity("B") == on_revm.equity("B")


def test_case__backstop_and_bad_inputs():
    case = Case()
    case.fund_vault(5_000, backstop=2_000)
    case.deposit("A", 1_100)
    case.deposit("B", 20_000)
    case.trade(buyer="A", seller="B", market="ETH-PERP", size=5, price=2_000)
    case.mark("ETH-PERP", 1_860)  # equity 1,098 - 700 = 398 < maintenance 465: liquidatable, not bankrupt
    events = case.liquidate("A", backstop=True)
    taken = next(ev for ev in events if ev.name == "PositionLiquidated")
    assert taken.args["liquidator"] == case.d.vault and taken.args["size"] > 0
    with pytest.raises(ValueError, match="name the taker"):
        case.liquidate("A")
    with pytest.raises(ValueError, match="unknown market 'BTC-PERP'"):
        case.mark("BTC-PERP", 1)
    with pytest.raises(ValueError, match="finer than one unit"):
        exact_units("0.0000001", 10**6)
    with pytest.raises(ValueError, match="Z holds no position"):
        case.liquidate("Z", by="B")


def test_case__profit_clawback_as_the_readme_says():
    """The README's case under PROFIT: the keeper contract claws A's residual back
    from the accounts in profit (B 2,000, C 800; D's long loses) and takes A over."""
    case, residual = play(Case(policy="PROFIT"))
    assert {c.name: c.profit for c in case.charges()} == {"B": 572_857_142, "C": 229_142_858}
    assert residual == 802 * 10**6
    assert case.view("collateral", "A") == 0 and case.view("bad_debt") == 0
