"""Stateful fuzzing of whole-system invariants, the four loss policies, on revm.

Hypothesis drives deposits, withdrawals, signed trades, price moves, funding
and time, liquidations, keeper sweeps, settlement of every account and
governance switching a market's loss policy, against the compiled contracts on
``RevmEngine`` (a fresh deployment per example: examples never share state).
After every step: the ledger identity to the unit and the aggregates equal the
per-account sums. At every socialization: each other account's equity moves
exactly as the exact (``Fraction``) reference says, within one token unit —
EQUITY: ``E' = E·(1 − r)``; OPEN_INTEREST: the charged side loses
``|size|·per_contract``, the other side nothing. Under ADL the keeper's sweep
deleverages bankrupt last positions (candidates from ``perpclear.adl.queue``):
each counterparty's equity falls by its charge ``size × |price − mark|``
within two units, ranks are non-increasing, everyone else is untouched. Under
PROFIT it claws back bankrupt last positions from every holder: each payer's
equity falls by exactly its charge, within one unit of ``R·profit/P``, the
charges add up to ``min(R, P)``, nobody else moves. After a keeper sweep nothing
is liquidatable; after settling everyone the socialized losses are fully
collected (completeness) and no account is below zero.

Profiles (``PERPCLEAR_FUZZ_PROFILE``): ``quick`` in ``make test``, ``ci`` with
more and longer examples in CI (``.ci/run``).
"""

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from perpclear.adl import queue
from perpclear.deployment import HUGE, Roles, deploy, trader_key
from perpclear.engine import EngineError, RevmEngine
from perpclear.model import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_PROFIT, WAD
from perpclear.units import EQUITY_SCALE
from perpclear.scenario import parse_scenario

N = 4  # traders
SCENARIO = {
    "name": "fuzz",
    "markets": [
        {"name": "ETH", "price": 2000, "path": {"kind": "explicit", "prices": [2000]}},
        {"name": "SOL", "price": 30, "imr_bps": 2000, "mmr_bps": 1000, "penalty_bps": 500,
         "path": {"kind": "explicit", "prices": [30]}},
    ],
    "traders": {"count": 1, "collateral": {"min": 1, "max": 1}, "leverage": {"min": 1, "max": 1}},
    "vault": {"assets": 0},
}
POLICIES = st.sampled_from([POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_ADL, POLICY_PROFIT])
MOVES = st.sampled_from([-6_000, -4_000, -2_500, -1_200, -600, 600, 1_200, 2_500]) | st.integers(-300, 300)
STATS: dict = {}


class SystemMachine(RuleBasedStateMachine):
    decimals = 6
    policy = POLICY_EQUITY  # both markets' policy at the start (a rule may switch them)
    engine = RevmEngine  # test_compiler_crosscheck runs the same rules on two builds at once

    @initialize(
        vault=st.sampled_from([0, 0, 50, 5_000]),
        margins=st.lists(st.integers(100, 10_000), min_size=N, max_size=N),
    )
    def setup(self, vault, margins):
        policies = (self.policy, self.policy)
        sc = parse_scenario({**SCENARIO, "decimals": self.decimals})
        self.u = sc.unit
        self.e = self.engine()
        self.r = Roles()
        self.d = deploy(self.e, sc, self.r)
        self.ch = self.d.clearing_house
        self.traders = [trader_key(99, i) for i in range(N)]
        self.accounts = [t.address for t in self.traders] + [self.r.liquidator.address]
        self.d.fund([(t, m * self.u) for t, m in zip(self.traders, margins)] + [(self.r.liquidator, 10**9 * self.u)])
        if vault:
            ins, amount = self.r.insurer, vault * self.u
            self.e.send([self.d.tx(self.r.admin, self.d.token, "mint", ins.address, amount),
                         self.d.tx(ins, self.d.token, "approve", self.d.vault, amount),
                         self.d.tx(ins, self.d.vault, "deposit", amount, ins.address)])
        self.policies = list(policies)
        for m, policy in enumerate(policies):
            self.set_policy(m, policy)
        self.marks = [2_000 * self.u, 30 * self.u]
        self.rates = [0, 0]

    # ------------------------------------------------------------ helpers

    def attempt(self, name, tx):
        try:
            logs = self.e.send([tx])[0]
        except EngineError:
            STATS[(name, False)] = STATS.get((name, False), 0) + 1
            return None
        STATS[(name, True)] = STATS.get((name, True), 0) + 1
        return logs

    def view(self, fn, *args):
        return self.d.view(fn, *args)

    def sizes(self, account):
        return [self.view("positions", account, m)[0] for m in range(2)]

    # ------------------------------------------------------------ rules

    @rule(who=st.integers(0, N - 1), amount=st.integers(1, 20_000))
    def deposit(self, who, amount):
        t = self.traders[who]
        value = amount * self.u // 10
        self.e.send([self.d.tx(self.r.admin, self.d.token, "mint", t.address, value)])
        self.attempt("deposit", self.d.tx(t, self.ch, "deposit", value))

    @rule(who=st.integers(0, N - 1), fraction=st.integers(1, 100))
    def withdraw(self, who, fraction):
        t = self.traders[who]
        value = max(self.view("collateral", t.address), 1) * fraction // 100 or 1
        self.attempt("withdraw", self.d.tx(t, self.ch, "withdraw", value))

    @rule(buyer=st.integers(0, N - 1), seller=st.integers(0, N - 1), market=st.integers(0, 1),
          use_pct=st.integers(5, 120))
    def trade(self, buyer, seller, market, use_pct):
        if buyer == seller:
            return
        b, s = self.traders[buyer], self.traders[seller]
        free = max(min(self.view("health", a.address)[0] - self.view("health", a.address)[2] for a in (b, s)), self.u)
        imr = 1_000 if market == 0 else 2_000
        size = max(free * 10_000 // imr * use_pct // 100 * WAD // self.marks[market], 1)
        self.attempt("trade", self.d.order_pair(b, s, market, size, self.marks[market], self.d.next_nonce()))

    @rule(market=st.integers(0, 1), move_bps=MOVES)
    def move_price(self, market, move_bps):
        self.marks[market] = max(self.marks[market] * (10_000 + move_bps) // 10_000, 1)
        self.d.set_marks({market: self.marks[market]})

    @rule(buyer=st.integers(0, N - 1), seller=st.integers(0, N - 1), market=st.integers(0, 1),
          use_pct=st.integers(50, 100), hurt_buyer=st.booleans(), gap_bps=st.integers(500, 6_000))
    def open_then_gap(self, buyer, seller, market, use_pct, hurt_buyer, gap_bps):
        """A leveraged fill, a gap against one side, a keeper sweep: the cascade in small."""
        self.trade(buyer, seller, market, use_pct)
        self.move_price(market, -gap_bps if hurt_buyer else gap_bps)
        self.keeper_sweep()

    @rule(market=st.integers(0, 1), rate=st.integers(-(10**13), 10**13))
    def set_funding_rate(self, market, rate):
        self.attempt("funding", self.d.tx(self.r.keeper, self.ch, "set_funding_rate", market, rate))
        self.rates[market] = rate

    @rule(seconds=st.integers(1, 3_000))
    def wait(self, seconds):
        self.e.advance(seconds)
        # Accrue now, so that the funding indexes do not move inside a later
        # liquidation (the fairness check compares equity across one).
        for m in range(2):
            self.e.send([self.d.tx(self.r.keeper, self.ch, "set_funding_rate", m, self.rates[m])])

    @rule(market=st.integers(0, 1), policy=POLICIES)
    def set_policy(self, market, policy):
        self.e.send([self.d.tx(self.r.admin, self.ch, "set_loss_policy", market, policy)])
        self.policies[market] = policy

    @rule(who=st.integers(0, N - 1), market=st.integers(0, 1), size_pct=st.integers(1, 150))
    def liquidate(self, who, market, size_pct):
        account = self.accounts[who]
        size = max(abs(self.sizes(account)[market]) * size_pct // 100, 1)
        self.fair_liquidation(account, market, size)

    @rule()
    def keeper_sweep(self):
        """Liquidates until nothing is liquidatable; it must get there."""
        for _ in range(4 * N):
            todo = [a for a in self.accounts[:N] if self.view("is_liquidatable", a)]
            if not todo:
                break
            a = todo[0]
            sizes = self.sizes(a)
            market = max(range(2), key=lambda m: abs(sizes[m]) * self.marks[m])
            last = sum(1 for s in sizes if s) == 1
            if last and self.view("health", a)[0] < 0:
                if self.policies[market] == POLICY_ADL:
                    self.deleverage(a, market)
                elif self.policies[market] == POLICY_PROFIT:
                    self.clawback(a, market)
            if self.view("is_liquidatable", a):
                self.fair_liquidation(a, market, HUGE)
        assert not [a for a in self.accounts if self.view("is_liquidatable", a)], "liquidatable after a sweep"

    @rule()
    def settle_everyone(self):
        """Sweep, then settle every account: losses fully collected, nobody below zero."""
        self.keeper_sweep()
        self.e.send([self.d.tx(self.r.keeper, self.ch, "settle_funding", a) for a in self.accounts + [self.d.vault]])
        assert self.view("loss_receivable") <= 0, "EQUITY charges not fully collected"
        assert self.view("funding_pool") >= 0, "funding pool short after everyone settled"
        for a in self.accounts:
            assert self.view("equity", a) >= 0, f"{a} below zero after settlement"
        STATS["settled"] = STATS.get("settled", 0) + 1

    # ------------------------------------------------------------ fairness

    def fair_liquidation(self, account, market, size):
        others = [a for a in self.accounts if a not in (account, self.r.liquidator.address)]
        before = {a: (self.view("equity", a), self.sizes(a), self._pending_share(a)) for a in others}
        logs = self.attempt("liquidate", self.d.tx(self.r.liquidator, self.ch, "liquidate", account, market, size, False))
        if logs is None:
            return
        social = [ev for ev in logs if ev.name == "LossSocialized"]
        if not social:
            for a in others:  # a liquidation without socialization leaves everyone else alone
                assert self.view("equity", a) == before[a][0]
            return
        (ev,) = social
        STATS[("socialized", ev.loss_policy)] = STATS.get(("socialized", ev.loss_policy), 0) + 1
        for a in others:
            equity, sizes, pending = before[a]
            if ev.loss_policy == POLICY_EQUITY:
                if pending is None:
                    # a negative share already withheld: the view shows it as nothing,
                    # and this socialization can only lower the account's equity
                    assert self.view("equity", a) <= equity, (a, equity)
                    continue
                # The account's pending share P >= 0 is known, its own equity E is the
                # view's; after a share r * E the view shows E + P - max(P + r * E, 0):
                # E * (1 - r) when E > 0, a negative share never paid out.
                share = pending + Fraction(equity) * Fraction(ev.rate, EQUITY_SCALE)
                expected = equity + pending - max(share, 0)
            else:
                longs_pay = ev.index_after > ev.index_before
                s = sizes[ev.market]
                pays = s != 0 and (s > 0) == longs_pay
                expected = Fraction(equity) - (Fraction(abs(s) * ev.rate, 10**36) if pays else 0)
            actual = self.view("equity", a)
            assert abs(actual - expected) <= 1, (ev.loss_policy, a, equity, actual, float(expected))

    def _pending_share(self, account):
        """The account's pending EQUITY share when it is known to be >= 0 (None: a
        negative share is pending, which the views do not show)."""
        pending = self.view("pending_loss_charge", account)
        if pending > 0 or self.view("loss_snapshot", account) in (0, self.view("scale")):
            return pending
        return None

    def deleverage(self, account, market):
        """ADL of a bankrupt last position against the queue; a refusal (the vault
        covers it, no candidate) leaves it to the liquidation at the mark."""
        long = self.sizes(account)[market] > 0
        ranked = [a for a, _ in queue(self.e, self.ch, self.d.deleverager, self.accounts, market, not long)]
        if not ranked:
            return
        before = {a: self.view("equity", a) for a in self.accounts if a != account}
        logs = self.attempt("deleverage", self.d.tx(self.r.liquidator, self.d.deleverager, "deleverage", account, market, ranked))
        if logs is None:
            return
        fills = [ev for ev in logs if ev.name == "Deleveraged"]
        ranks = [ev.rank for ev in fills]
        assert ranks == sorted(ranks, reverse=True)
        charged = {ev.counterparty: Fraction(ev.size * abs(ev.price - ev.mark), WAD) for ev in fills}
        STATS["deleveraged"] = STATS.get("deleveraged", 0) + len(fills)
        for a, equity in before.items():
            fell = equity - self.view("equity", a)
            assert abs(fell - charged.get(a, 0)) <= 2, (a, equity, fell, float(charged.get(a, 0)))

    def clawback(self, account, market):
        """PROFIT: the residual charged to every account in profit, pro rata; each
        payer's equity falls by exactly its charge, within one unit of
        R * profit / P, and nobody else's moves. A refusal (the vault covers it)
        leaves it to the liquidation at the mark."""
        held = [a for a in sorted(set(self.accounts) | {self.r.liquidator.address}, key=lambda a: int(a, 16))
                if a != account and self.sizes(a)[market]]
        if not held:
            return
        before = {a: self.view("equity", a) for a in self.accounts if a != account}
        logs = self.attempt("clawback", self.d.tx(self.r.liquidator, self.d.profit_policy, "clawback", account, market, held))
        if logs is None:
            return
        (run,) = [ev for ev in logs if ev.name == "ClawbackRun"]
        charged = {ev.payer: ev for ev in logs if ev.name == "ProfitCharged"}
        assert sum(ev.amount for ev in charged.values()) == run.charged == min(run.residual, run.profit)
        for ev in charged.values():
            exact = Fraction(ev.profit) if run.profit <= run.residual else Fraction(run.residual * ev.profit, run.profit)
            assert abs(ev.amount - exact) < 1 and ev.amount <= ev.profit, (ev.payer, ev.amount, float(exact))
        STATS["clawed back"] = STATS.get("clawed back", 0) + sum(1 for ev in charged.values() if ev.amount)
        for a, equity in before.items():
            paid = charged[a].amount if a in charged else 0
            assert self.view("equity", a) == equity - paid, (a, equity, paid)

    # ------------------------------------------------------------ always

    @invariant()
    def conservation(self):
        if not hasattr(self, "d"):
            return
        assert self.d.ledger_gap() == 0
        total = sum(self.view("collateral", a) for a in self.accounts + [self.d.vault])
        assert total == self.view("total_collateral")


PROFILE = {"quick": dict(max_examples=60, stateful_step_count=30), "ci": dict(max_examples=300, stateful_step_count=50)}


def run_machine(decimals: int, policy: int, fuzz_profile: str, **attrs) -> None:
    """Runs the rules for one decimals and starting policy (``attrs``: class overrides)."""
    STATS.clear()
    machine = type(f"SystemMachine{decimals}_{policy}", (SystemMachine,), {"decimals": decimals, "policy": policy, **attrs})
    machine.TestCase.settings = settings(
        **PROFILE[fuzz_profile],
        # The same run on every machine and in any order: no saved example replayed.
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    machine.TestCase().runTest()


@pytest.mark.parametrize("policy", [POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_ADL, POLICY_PROFIT],
                         ids=["equity", "open_interest", "adl", "profit"])
@pytest.mark.parametrize("decimals", [6, 18])
def test_system_invariants(decimals, policy, fuzz_profile):
    run_machine(decimals, policy, fuzz_profile)
    for step in ("trade", "liquidate", "withdraw"):
        assert STATS.get((step, True), 0) >= 5, sorted(STATS.items(), key=str)
    # The starting policy placed losses: pro rata, or by deleveraging.
    placed = {POLICY_ADL: STATS.get("deleveraged", 0), POLICY_PROFIT: STATS.get("clawed back", 0)}.get(
        policy, STATS.get(("socialized", policy), 0))
    assert placed > 0, STATS
    assert STATS.get("settled", 0) > 0, STATS
