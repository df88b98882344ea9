"""The audit rebuilds every loss from chain logs: a correct run passes, doctored
logs fail naming the event. Runs on the embedded chain and on anvil."""

import pytest

from perpclear.audit import audit, doctored, final_views, accounts_of, run_audit
from perpclear.cascade import Cascade
from perpclear.engine import ChainEngine
from perpclear.scenario import load_scenario

pytestmark = pytest.mark.anvil


CASES = {"equity": ("gap-30", "EQUITY"), "open-interest": ("flash-crash", "OPEN_INTEREST")}


@pytest.fixture(scope="module", params=list(CASES))
def audited(request):
    """A cascade on the connected chain, its addresses and its decoded logs."""
    name, policy = CASES[request.param]
    sc = load_scenario(name)
    sc = sc.with_overrides(loss_policy=policy, traders={**sc.traders.model_dump(), "count": 24})
    engine = ChainEngine.from_ape()
    runner = Cascade(sc, engine)
    result = runner.run()
    d = runner.d
    addresses = {"token": d.token, "oracle": d.oracle, "vault": d.vault, "clearing_house": d.clearing_house, "order_book": d.order_book}
    verdict, records = run_audit(engine, addresses)
    final = final_views(engine, addresses, accounts_of(records))
    return result, addresses, verdict, records, final


def test_a_correct_run_passes(audited):
    result, _, verdict, records, _ = audited
    assert verdict.ok, verdict.rows()
    assert verdict.checked["waterfall"] == len(result.liquidations) and result.bankruptcies
    assert verdict.checked["replay"] >= len(result.liquidations)
    assert verdict.checked["socialization"] == len(result.socializations)
    assert verdict.checked["atomic"] == sum(1 for b in result.bankruptcies if b["residual"])


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
