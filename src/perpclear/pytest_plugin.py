"""pytest fixtures for teams testing their own perp parameters with perpclear.

Installed with the package (entry point ``pytest11``), so in another
repository ``pip install perpclear`` is all it takes::

    def test_my_crash(make_cascade, assert_invariants):
        result = make_cascade("flash-crash", loss_policy="OPEN_INTEREST", traders=50)
        assert_invariants(result)
        assert result.totals()["bad_debt"] == 0

Fixtures (each test gets fresh contracts):

- ``perpclear_engine``: the engine, chosen by ``--perpclear-network``: ``revm``
  (default) or ``boa`` (in process), or ``ape`` (the network that ``ape test``
  is connected to: the embedded chain, or anvil with ``--network
  ethereum:local:foundry``);
- ``perpclear_scenario``: the scenario whose markets the system lists
  (default: the bundled ``mild-dip``; override the fixture to use yours);
- ``perpclear_roles``: the operator keys (admin, keeper, matcher, insurer,
  market maker, liquidator);
- ``perpclear_system``: a deployed, wired ``Deployment`` of that scenario with
  the market maker and the keeper contract's margin funded;
- ``perpclear_traders``: ``perpclear_traders(n, collateral=10_000)`` funds ``n``
  new traders (whole tokens each) and returns their keys;
- ``make_cascade``: ``make_cascade(scenario=None, **overrides)`` runs a scenario
  (a file, a bundled name or a ``Scenario``; ``traders=N`` sets the count) on a
  fresh engine and returns the ``CascadeResult``;
- ``assert_invariants``: ``assert_invariants(result_or_system)`` fails the test
  with every broken invariant named.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perpclear")
    group.addoption(
        "--perpclear-network",
        default="revm",
        choices=("revm", "boa", "ape"),
        help="engine of the perpclear fixtures: revm or boa (in process) or ape (the network ape test uses)",
    )


def _new_engine(config: pytest.Config):
    from perpclear.engine import IN_PROCESS, ChainEngine

    name = config.getoption("--perpclear-network")
    return ChainEngine.from_ape() if name == "ape" else IN_PROCESS[name]()


@pytest.fixture
def perpclear_engine(request: pytest.FixtureRequest):
    return _new_engine(request.config)


@pytest.fixture
def perpclear_scenario():
    from perpclear.scenario import load_scenario

    return load_scenario("mild-dip")


@pytest.fixture
def perpclear_roles():
    from perpclear.deployment import Roles

    return Roles()


@pytest.fixture
def perpclear_system(perpclear_engine, perpclear_scenario, perpclear_roles):
    from perpclear.deployment import deploy

    system = deploy(perpclear_engine, perpclear_scenario, perpclear_roles)
    unit = 10**perpclear_scenario.decimals
    system.fund([(perpclear_roles.market_maker, 10**7 * unit)])
    system.fund_keeper(10**7 * unit)  # the keeper contract liquidates with this margin
    return system


@pytest.fixture
def perpclear_traders(perpclear_system):
    from perpclear.deployment import trader_key

    made = []

    def fund(n: int, collateral: float = 10_000) -> list:
        unit = 10**perpclear_system.decimals
        keys = [trader_key(-1, len(made) + i) for i in range(n)]
        perpclear_system.fund([(k, int(collateral * unit)) for k in keys])
        made.extend(keys)
        return keys

    return fund


@pytest.fixture
def make_cascade(request: pytest.FixtureRequest):
    from perpclear.cascade import run_cascade
    from perpclear.scenario import Scenario, load_scenario

    def run(scenario: Any = None, **overrides: Any):
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario or "flash-crash")
        if isinstance(overrides.get("traders"), int):
            overrides["traders"] = {**sc.traders.model_dump(), "count": overrides["traders"]}
        if overrides:
            sc = sc.with_overrides(**overrides)
        return run_cascade(sc, _new_engine(request.config))

    return run


def invariant_errors(target: Any) -> list[str]:
    """Every broken invariant of a ``CascadeResult`` or a deployed system."""
    from perpclear.results import CascadeResult

    if isinstance(target, CascadeResult):
        return [f"{k}: {v}" for k, v in target.invariants.items() if v != "ok"]
    gap = target.ledger_gap()
    return [] if gap == 0 else [f"conservation: ledger identity off by {gap} units"]


@pytest.fixture
def assert_invariants():
    def check(target: Any) -> None:
        errors = invariant_errors(target)
        assert not errors, "perpclear invariants broken:\n" + "\n".join(errors)

    return check
