"""The engines refuse a reverting transaction the same way: EngineError naming the call and the contract's reason."""

import pytest

from perpclear.deployment import deploy
from perpclear.engine import IN_PROCESS, EngineError, Tx
from perpclear.scenario import load_scenario


@pytest.mark.parametrize("name", sorted(IN_PROCESS))
def test_a_revert_names_the_call_and_the_reason(name):
    engine = IN_PROCESS[name]()
    d = deploy(engine, load_scenario("mild-dip"))
    with pytest.raises(EngineError, match=r"^ClearingHouse\.deposit reverted: clearing: zero amount$"):
        engine.send([Tx(d.roles.admin, d.clearing_house, "deposit", (0,))])
    with pytest.raises(EngineError, match=r"^OrderBook\.set_matcher reverted: ownership: not owner$"):
        engine.send([Tx(d.roles.keeper, d.order_book, "set_matcher", (d.roles.keeper.address, True))])
    assert engine.call(d.clearing_house, "market_count") == 1
