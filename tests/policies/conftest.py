"""Fixtures of the loss-policy tests: ``Mirror.in_process`` (tests/harness.py:
the whole system in titanoboa, the exact model beside it; two markets, 0 = ETH at 2_000,
1 = SOL at 30, whole units; every action followed by the ledger identity of
docs/loss-policies.md, "Ledger") and populations of many accounts.

``Population`` (one per collateral decimals) builds, once per session and per
size N, a mirror with N "other" accounts (distinct keys
``Account.from_key(i.to_bytes(32, "big"))``, positions opened by signed trades
against one market maker, both sides, leverage 1x to 8x, every third account
in both markets). ``pop.at(n)`` yields it inside ``Mirror.anchor()`` (chain and
model restored after), so each test starts from the same N accounts and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from perpclear.model import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, WAD
from perpclear.units import equity_scale

from harness import ETH, HUGE, MARKETS, SCALE, SOL, Mirror, by_name, key, tx_gas

# Private keys of the population (the ith other account); roles use other ranges.
POP_KEY_BASE = 1_000_000


class Population:
    """Populations of N other accounts for one collateral decimals, one mirror per N,
    built once (see the module docstring) and reused by every test."""

    def __init__(self, decimals: int):
        self.decimals = decimals
        self.sims: dict[int, Mirror] = {}

    @property
    def members(self) -> list:
        """Addresses of the population accounts, in order (the first N form population N)."""
        return [key(POP_KEY_BASE + i).address for i in range(max(self.sims, default=0))]

    def build(self, n: int) -> Mirror:
        sim = Mirror.in_process(self.decimals)
        populate(sim, n)
        return sim

    @contextlib.contextmanager
    def at(self, n: int):
        if n not in self.sims:
            self.sims[n] = self.build(n)
        with self.sims[n].anchor() as sim:
            yield sim


def populate(sim: Mirror, n: int):
    """Adds the N population accounts to ``sim`` (see the module docstring)."""
    rng = random.Random(20_240_601 + sim.decimals)
    u = sim.u
    with sim.active():
        sim.fund(sim.mm.address, n * 60_000 * u, check=False)  # the maker's margin grows with its book
        for i in range(n):
            trader = key(POP_KEY_BASE + i)
            margin = rng.randint(50, 20_000) * u + rng.randint(0, u - 1)
            sim.fund(trader.address, margin, check=False)
            both = i % 3 == 2
            for market in (ETH, SOL) if both else (ETH,):
                price = sim.model.markets[market].price
                imr = MARKETS[market][1].imr_bps
                # leverage between 1x and 80 % of the maximum, halved when in both markets
                max_pct = 10_000 * 100 // imr * 80 // 100 // (2 if both else 1)
                pct = rng.randint(100 if not both else 50, max_pct)
                size = margin * pct // 100 * WAD // price + rng.randint(0, 10**12)
                sim.open(trader, market, size if rng.random() < 0.5 else -size, check=False)
        sim.check()
        sim.check_accounts([key(POP_KEY_BASE + i).address for i in range(n)])


@pytest.fixture(scope="session")
def populations():
    """Populations by collateral decimals, shared by every test of the folder."""
    return {6: Population(6), 18: Population(18)}


@pytest.fixture(scope="session")
def h():
    """The names the policy tests use, in one namespace: the harness
    (tests/harness.py), this folder's populations and the policy ids."""
    import types

    return types.SimpleNamespace(
        Mirror=Mirror, Population=Population, populate=populate, key=key, tx_gas=tx_gas, by_name=by_name,
        ETH=ETH, SOL=SOL, HUGE=HUGE, WAD=WAD, SCALE=SCALE, equity_scale=equity_scale, MARKETS=MARKETS,
        EQUITY=POLICY_EQUITY, OPEN_INTEREST=POLICY_OPEN_INTEREST, ADL=POLICY_ADL,
    )
