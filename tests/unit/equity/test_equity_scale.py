"""The EQUITY scale K never floors and never drifts (modules/loss_equity.vy).

The module alone (tests/unit/equity/EquityHarness.vy, one market, no funding)
is driven through thousands of socializations in process, and every account's
settled collateral is compared with an exact model: each socialization at the
exact rate r = min((R + 1) / D, MAX_RATE) maps an account's collateral c to
c - r * e, e = c + s * q / WAD**2 - o its equity (decimal arithmetic with 120
digits: exact to far below a unit). The contract's collateral is floored, so
it may be up to one unit below the model, never above it by a unit.
"""

import random
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from perpclear.deployment import labelled_key
from perpclear.engine import RevmEngine, Tx
from perpclear.engine.base import Artifact
from perpclear.units import EQUITY_SCALE, MAX_RATE, WAD, equity_scale
from budget import by_profile

W2 = WAD * WAD
HARNESS = Path(__file__).with_name("EquityHarness.vy")


@dataclass
class Account:
    """A position (size s, open notional o; s = 0: collateral only) and its snapshots."""

    c: Decimal  # collateral, exact
    s: int
    o: int
    x_w2: int  # X * WAD**2 at the snapshot
    k: int  # the K word at the snapshot

    def equity(self, q: int) -> Decimal:
        return self.c + Decimal(self.s * q) / W2 - self.o


class Harness:
    """EquityHarness.vy on revm: views by name, transactions by ``send``."""

    def __init__(self):
        self.engine = RevmEngine()
        self.sender = labelled_key("equity-harness")
        self.address = self.engine.deploy(Artifact("EquityHarness", HARNESS), sender=self.sender)

    def __getattr__(self, fn: str):
        return lambda *args: self.engine.call(self.address, fn, *args)

    def send(self, fn: str, *args) -> None:
        self.engine.send([Tx(self.sender, self.address, fn, args)])

    def socialize(self, steps: list[tuple[int, int, int]]) -> list[int]:
        """The steps, 40 per transaction (within the engine's gas per transaction); returns their rates."""
        batches = [steps[i : i + 40] for i in range(0, len(steps), 40)]
        rates = [r for batch in batches for r in self.rates(batch)]
        self.engine.send([Tx(self.sender, self.address, "socialize_many", (batch,)) for batch in batches])
        return rates


class Scale:
    """The harness and the exact model side by side."""

    def __init__(self):
        self.chain = Harness()
        self.accounts: list[Account] = []
        self.k = Decimal(1)  # the product of (1 - r), exact to 120 digits

    def join(self, collateral: int, size: int = 0, entry: int = 0) -> Account:
        """An account settled now: X = c - o + s * A / WAD**2 (f = 0)."""
        o = size * entry // WAD
        a = self.chain.side_index(0, size > 0)
        x_w2 = (collateral - o) * W2 + size * a
        self.chain.send("add_basis", x_w2 // W2)
        account = Account(Decimal(collateral), size, o, x_w2, self.chain.scale())
        self.accounts.append(account)
        return account

    def socialize(self, steps: list[tuple[int, int, int]]) -> None:
        """Each step (R, D, q): the chain's rate is the exact one rounded up by less than 1e-36."""
        rates = self.chain.socialize(steps)
        for (residual, total, q), rate in zip(steps, rates):
            exact = min(Fraction(residual + 1, total), MAX_RATE)
            assert exact <= Fraction(rate, EQUITY_SCALE) < exact + Fraction(1, EQUITY_SCALE)
            r = Decimal(exact.numerator) / Decimal(exact.denominator)
            for a in self.accounts:
                a.c -= r * a.equity(q)
            self.k *= 1 - r

    def settled(self, a: Account) -> int:
        tail_w2 = a.o * W2 - a.s * self.chain.side_index(0, a.s > 0)
        return self.chain.settled(a.x_w2, a.k, tail_w2)

    def check(self) -> list[Decimal]:
        """Every account within one unit of the model (floored: never a unit above it)."""
        errors = []
        for a in self.accounts:
            error = self.settled(a) - a.c
            assert -1 <= error < 1, (a, error)
            errors.append(error)
        k = equity_scale(self.chain.scale())
        k_chain = Decimal(k.numerator) / Decimal(k.denominator)
        assert k_chain <= self.k and self.k - k_chain <= self.k / 10**33, (self.k - k_chain) / self.k
        return errors


def steps(rng: random.Random, count: int, total: int, q: int, smallest: float, largest: float):
    """``count`` socializations at rates spread log-uniformly in [smallest, largest], the mark walking."""
    out = []
    for _ in range(count):
        rate = 10 ** rng.uniform(smallest, largest)
        q = max(q + rng.randint(-q // 100, q // 100), 1)
        out.append((int(total * rate), total, q))
    return out, q


def test_equity_scale__ten_thousand_socializations_within_one_unit_at_1e12_tokens():
    """10,000 socializations, 18-decimal collateral: accounts of up to 10**12 tokens
    (collateral only, long, short, and one that joins half-way) stay within one
    unit of the exact model at every checkpoint; K keeps 33 digits of the exact
    product."""
    with localcontext() as ctx:
        ctx.prec = 120
        token = 10**18
        mark = 2_000 * token  # units per contract
        q = mark * WAD
        rng = random.Random(11)
        sim = Scale()
        sim.join(10**12 * token)  # the largest the issue names: 10**30 units
        sim.join(10**11 * token, 10**8 * WAD, mark - 3 * token)  # long 10**8 contracts
        sim.join(10**11 * token, -10**8 * WAD, mark + 3 * token)  # short
        sim.join(7 * token // 10)  # small
        total = 10**31
        worst = Decimal(0)
        for block in range(20):
            batch, q = steps(rng, 500, total, q, -14, -3)
            sim.socialize(batch)
            if block == 9:
                sim.join(5 * 10**11 * token + 12_345, 3 * 10**7 * WAD, q // WAD)
            worst = max(worst, *(abs(e) for e in sim.check()))
        assert sim.k < Decimal("0.9")  # the run moved K a long way
        print(f"\n[K] {float(sim.k):.3e} after 10,000 socializations; worst |chain - model| {float(worst):.3f} unit")


def test_equity_scale__no_floor_after_any_number_of_capped_socializations():
    """Forty socializations at the cap (each takes 99.9999 %) take K to 1e-240, far below the
    1e-12 that used to turn every later residual into bad debt: each still books its rate,
    and an account that joins afterwards is charged exactly."""
    with localcontext() as ctx:
        ctx.prec = 120
        sim = Scale()
        q = 2_000 * 10**6 * WAD
        sim.join(10**30)
        total = 10**40
        sim.socialize([(total, total, q)] * 40)
        assert sim.chain.scale() >> 144 == 40  # one rescale per capped socialization
        assert Fraction(1, 10**241) < equity_scale(sim.chain.scale()) < Fraction(1, 10**239)  # (1e-6)**40
        late = sim.join(10**24, 5 * WAD, 2_000 * 10**6)
        batch, q = steps(random.Random(3), 200, 10**25, q, -9, -2)
        sim.socialize(batch)
        sim.check()
        assert sim.settled(late) < 10**24 - 10**20  # charged: the scale still moves
        assert list(sim.chain.rates([(10, 10**12, q)])) == [-(-11 * EQUITY_SCALE // 10**12)]


@pytest.mark.parametrize("decimals", [6, 18])
@settings(max_examples=by_profile(quick=25, ci=100), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_equity_scale__random_runs_match_the_model(decimals, data):
    """Random accounts (collateral up to 10**12 tokens, positions either side), random
    residuals from dust to the cap, a walking mark, accounts joining between runs."""
    with localcontext() as ctx:
        ctx.prec = 120
        token = 10**decimals
        rng = random.Random(data.draw(st.integers(0, 2**32)))
        sim = Scale()
        q = data.draw(st.integers(1, 10**6)) * token * WAD
        for _ in range(data.draw(st.integers(1, 3))):
            for _ in range(data.draw(st.integers(1, 3))):
                size = data.draw(st.integers(-10**9, 10**9)) * WAD
                entry = q // WAD + data.draw(st.integers(-1, 1)) * token
                sim.join(data.draw(st.integers(0, 10**12)) * token + data.draw(st.integers(0, token)), size, entry)
            total = data.draw(st.integers(10, 10**14)) * token
            batch, q = steps(rng, data.draw(st.integers(1, 60)), total, q, -30, 0.5)
            sim.socialize(batch)
            sim.check()
