"""The same scenarios on a real chain: ape's embedded chain in the local pass,
a real anvil node in the anvil pass (``make test`` runs both). Per-account
results must equal the in-process engines' to the unit.

Trader counts are cut to keep the embedded chain (about 50 ms per
transaction) quick; the scenario is otherwise unchanged.
"""

import pytest

from perpclear.cascade import run_cascade
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
