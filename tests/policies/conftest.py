"""Fixtures of the loss-policy tests: ``Mirror.in_process`` (tests/harness.py:
the whole system in titanoboa, the exact model beside it; two markets, 0 = ETH at 2_000,
1 = SOL at 30, whole units; every action followed by the ledger identity of
docs/loss-policies.md, "Ledger") and populations of many accounts.

``Population`` (one per collateral decimals) builds, once per session and per
size N, a mirror with N "other" accounts (``harness.populate``: positions
opened by signed trades against one market maker, both sides, every third
account in both markets). ``pop.at(n)`` yields it inside ``Mirror.anchor()`` (chain and
model restored after), so each test starts from the same N accounts and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib

import pytest

from harness import POP_KEY_BASE, Mirror, key, populate


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


@pytest.fixture(scope="session")
def populations():
    """Populations by collateral decimals, shared by every test of the folder."""
    return {6: Population(6), 18: Population(18)}
