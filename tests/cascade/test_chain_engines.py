"""The same scenarios on a real chain: ape's embedded chain in the local pass,
a real anvil node in the anvil pass (``make test`` runs both). Per-account
results must equal the in-process engines' to the unit.

Trader counts are cut to keep the embedded chain (about 50 ms per
transaction) quick; the scenario is otherwise unchanged.
"""

import pytest
from eth_account import Account

from perpclear.cascade import run_cascade
from perpclear.deployment import deploy
from perpclear.engine import ChainEngine, RevmEngine
from perpclear.scenario import bundled_scenarios, load_scenario

TRADERS = 24


def small(name):
    sc = load_scenario(name)
    return sc.with_overrides(traders={**sc.traders.model_dump(), "count": TRADERS})


# make test: the mild dip and the flash crash (the demo's); .ci/run: every scenario.
@pytest.mark.anvil
@pytest.mark.parametrize("name", [n if n in ("mild-dip", "flash-crash") else pytest.param(n, marks=pytest.mark.ci_scale)
                                  for n in (p.stem for p in bundled_scenarios())])
def test_chain_equals_fast_engines(name):
    sc = small(name)
    on_chain = run_cascade(sc, ChainEngine.from_ape())
    assert on_chain.ok, on_chain.invariants
    if name != "mild-dip":  # too mild to liquidate anyone among 24 traders
        assert on_chain.liquidations
    assert on_chain.outcome() == run_cascade(sc, RevmEngine()).outcome()


@pytest.mark.anvil
def test_chain_snapshot_and_advance():
    """On a node: ``advance`` mines one block that much later; ``snapshot``
    reverts the node and reads nonces afresh, so sending goes on after it."""
    engine = ChainEngine.from_ape()
    d = deploy(engine, load_scenario("mild-dip"))
    trader = Account.from_key(b"\x09" * 32)
    start, height = engine.timestamp(), engine.block_number()
    with engine.snapshot():
        d.fund([(trader, 10**9)])
        engine.advance(7_200)
        assert engine.timestamp() >= start + 7_200
        assert engine.call(d.clearing_house, "collateral", trader.address) == 10**9
    assert engine.block_number() == height
    assert engine.call(d.clearing_house, "collateral", trader.address) == 0
    d.fund([(trader, 5 * 10**8)])  # the same senders, after the revert
    assert engine.call(d.clearing_house, "collateral", trader.address) == 5 * 10**8
