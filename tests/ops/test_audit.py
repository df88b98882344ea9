"""The audit rebuilds every loss from chain logs: a correct run passes, doctored
logs fail naming the event. Runs on the embedded chain and on anvil."""

import os

import ape
import pytest

from perpclear.audit import audit, doctored, final_views, accounts_of, run_audit
from perpclear.cascade import Cascade
from perpclear.engine import ChainEngine
from perpclear.scenario import load_scenario

pytestmark = pytest.mark.anvil


CASES = {"equity": ("gap-30", "EQUITY"), "open-interest": ("flash-crash", "OPEN_INTEREST"), "adl": ("gap-30", "ADL"),
         "profit": ("gap-30", "PROFIT")}


@pytest.fixture(scope="module", params=list(CASES))
def audited(request):
    """A cascade on the connected chain, its addresses and its decoded logs."""
    if ape.chain.provider.name == "test" and os.environ.get("PERPCLEAR_FUZZ_PROFILE", "quick") != "ci":
        pytest.skip("make test audits these cascades in its anvil pass (a second each there, a minute "
                    "on the embedded chain); .ci/run runs them on both")
    name, policy = CASES[request.param]
    sc = load_scenario(name)
    sc = sc.with_overrides(loss_policy=policy, traders={**sc.traders.model_dump(), "count": 16})
    engine = ChainEngine.from_ape()
    runner = Cascade(sc, engine)
    result = runner.run()
    d = runner.d
    addresses = d.addresses()
    verdict, records = run_audit(engine, addresses)
    final = final_views(engine, addresses, accounts_of(records))
    return result, addresses, verdict, records, final


def test_a_correct_run_passes(audited):
    result, _, verdict, records, _ = audited
    assert verdict.ok, verdict.rows()
    assert result.bankruptcies
    assert verdict.checked["replay"] >= len(result.liquidations)
    assert verdict.checked["socialization"] == len(result.socializations)
    assert verdict.checked["atomic"] == sum(1 for b in result.bankruptcies if b["residual"])
    if result.policy == "ADL":  # each run: 3 checks, plus one per candidate
        assert result.deleveraged and verdict.checked["adl"] >= 3 * len(result.adl_runs) + len(result.deleveraged)
        assert verdict.checked["waterfall"] == len(result.liquidations) + len(result.bankruptcies)
    else:
        assert verdict.checked["waterfall"] == len(result.liquidations)
    if result.policy == "PROFIT":  # each run: its summary, one per payer, the passed-over check
        assert result.clawbacks and verdict.checked["profit"] >= 3 * len(result.clawback_runs) + len(result.clawbacks)


@pytest.mark.parametrize("audited", ["equity", "open-interest"], indirect=True)
@pytest.mark.parametrize(
    "name, field, check",
    [
        ("AccountBankrupt", "insurance_paid", "waterfall"),
        ("PositionLiquidated", "penalty", "replay"),
        ("LossSocialized", "rate", "socialization"),
        ("LossSocialized", "booked", "atomic"),
    ],
)
def test_doctored_logs_fail_naming_the_event(audited, name, field, check):
    _, addresses, _, records, final = audited
    assert any(r.name == name for r in records)
    verdict = audit(doctored(records, name, field, +5), addresses, final)
    assert not verdict.ok
    assert any(f.startswith(f"{name} (block") for f in verdict.failures[check]), verdict.failures


@pytest.mark.parametrize("audited", ["equity"], indirect=True)  # OPEN_INTEREST settles as funding
def test_a_doctored_settlement_fails(audited):
    _, addresses, _, records, final = audited
    verdict = audit(doctored(records, "LossSettled", "charge", 7), addresses, final)
    assert verdict.failures["charges"] or verdict.failures["completeness"]


@pytest.mark.parametrize("audited", ["equity"], indirect=True)
def test_a_doctored_withheld_share_fails(audited):
    """No account gains from a socialization: a negative share the chain says it
    withheld for the insurance fees is checked against the model's, both ways."""
    _, addresses, _, records, final = audited
    settled = [r for r in records if r.name == "LossSettled"]
    nth = next(i for i, r in enumerate(settled) if r.event.to_insurance > 0)
    for delta in (+3, -3):
        verdict = audit(doctored(records, "LossSettled", "to_insurance", delta, nth), addresses, final)
        assert any(f.startswith("LossSettled of ") and "to insurance" in f for f in verdict.failures["charges"]), verdict.failures
        assert verdict.failures["completeness"]


@pytest.mark.parametrize("audited", ["adl"], indirect=True)
@pytest.mark.parametrize(
    "name, field",
    [("Deleveraged", "price"), ("Deleveraged", "rank"), ("Deleveraged", "size"),
     ("DeleverageRun", "residual"), ("DeleverageRun", "price")],
)
def test_doctored_adl_logs_fail_naming_the_event(audited, name, field):
    _, addresses, _, records, final = audited
    assert any(r.name == name for r in records)
    verdict = audit(doctored(records, name, field, +1), addresses, final)
    assert not verdict.ok
    assert any(f.startswith(f"{name} (block") or f.startswith("DeleverageRun (block") for f in verdict.failures["adl"]), verdict.failures


@pytest.mark.parametrize("audited", ["profit"], indirect=True)
@pytest.mark.parametrize(
    "name, field",
    [("ProfitCharged", "amount"), ("ProfitCharged", "profit"), ("ClawbackRun", "residual"), ("ClawbackRun", "profit"),
     ("ClawbackRun", "charged")],
)
def test_doctored_profit_logs_fail_naming_the_event(audited, name, field):
    _, addresses, _, records, final = audited
    assert any(r.name == name for r in records)
    verdict = audit(doctored(records, name, field, +1), addresses, final)
    assert not verdict.ok
    assert any(f.startswith(f"{name} (block") for f in verdict.failures["profit"]), verdict.failures


def test_a_keeper_that_passes_over_the_top_of_the_queue_is_caught():
    """The deleverager checks the candidates it is given (side, profit, rank
    order, equity), not who was left out: a keeper can hand it a list without
    the account that ranks first. The audit replays every position at that
    block and names the account passed over."""
    from perpclear.case import Case

    engine = ChainEngine.from_ape()
    if engine.name.endswith(":test"):
        pytest.skip("runs in the anvil pass of make test: on the embedded chain its two full audits take a minute")
    case = Case(policy="ADL", engine=engine)
    case.fund_vault(100)
    case.deposit("A", 1_100)
    for name in ("B", "C", "D"):
        case.deposit(name, 20_000)
    case.trade(buyer="A", seller="B", market="ETH-PERP", size=5, price=2_000)  # B: short 5, first in the queue
    case.trade(buyer="D", seller="C", market="ETH-PERP", size=2, price=2_000)  # C: short 2, second
    case.mark("ETH-PERP", 1_600)
    assert case.view("adl_indicator", "B", 0, [case.address("C")])[:2][1] == 0  # B is first

    case.deleverage("A", candidates=["C"])  # the keeper leaves B out
    verdict, _ = run_audit(case.engine, case.d.addresses())
    (row,) = [r for r in verdict.rows() if r["guarantee"] == "adl"]
    assert row["result"].startswith("FAILED") and f"passed over {case.address('B')}" in row["first failure"], row

    case.deleverage("A")  # the rest, from the queue: B first; only the first run is flagged
    verdict, _ = run_audit(case.engine, case.d.addresses())
    assert len(verdict.failures["adl"]) == 1 and all(not verdict.failures[c] for c in verdict.failures if c != "adl")
