"""The audit reads logs through the engine's ``logs`` verb, so it runs on the
in-process engines too: a correct run passes, a doctored one fails."""

import pytest

from perpclear.audit import audit, doctored, final_views, accounts_of, run_audit
from perpclear.cascade import Cascade
from perpclear.engine import IN_PROCESS
from perpclear.scenario import load_scenario


@pytest.mark.parametrize("engine_name", sorted(IN_PROCESS))
@pytest.mark.parametrize("policy", ["EQUITY", "OPEN_INTEREST", "ADL", "PROFIT"])
def test_audit_of_an_in_process_run(engine_name, policy):
    sc = load_scenario("gap-30")
    sc = sc.with_overrides(loss_policy=policy, traders={**sc.traders.model_dump(), "count": 16})
    engine = IN_PROCESS[engine_name]()
    runner = Cascade(sc, engine)
    result = runner.run()
    addresses = runner.d.addresses()
    verdict, records = run_audit(engine, addresses)
    assert verdict.ok, verdict.rows()
    assert result.bankruptcies and verdict.checked["replay"] >= len(result.liquidations)
    assert [r.block for r in records] == sorted(r.block for r in records)
    assert engine.logs(list(addresses.values()), from_block=records[-1].block) == [
        r for r in records if r.block == records[-1].block]
    if policy == "PROFIT":
        assert verdict.checked["profit"] >= 1
        bad = audit(doctored(records, "ProfitCharged", "amount", -1), addresses,
                    final_views(engine, addresses, accounts_of(records)))
        assert not bad.ok and bad.failures["profit"][0].startswith("ProfitCharged (block")
    elif policy != "ADL":
        bad = audit(doctored(records, "LossSocialized", "rate", +5), addresses,
                    final_views(engine, addresses, accounts_of(records)))
        assert not bad.ok and bad.failures["socialization"]
