"""Stateful fuzzing: the compiled contracts and the exact model never disagree.

Hypothesis drives deposits, signed trades, price moves, funding, time, partial
and full liquidations, bankruptcies and withdrawals (SOL under OPEN_INTEREST
or, in half the examples, PROFIT: its bankrupt positions are clawed back and
taken over by the keeper) through the tests' harness
(``harness.Mirror``: the real contracts run in process by titanoboa, hundreds of
transactions per second, and the same steps applied to
``perpclear.model.ClearingModel``). After every step every
account's collateral, position, funding snapshot and health, the fees, the
funding pool, the vault's assets and the bad debt must be equal to the unit,
and the ledger identity must hold. A step the contracts refuse must be refused
by the model too, for the same reason.
"""

import copy

import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from perpclear.engine import EngineError
from perpclear.model import POLICY_OPEN_INTEREST, POLICY_PROFIT, WAD, MarketParams, ModelError

from harness import Mirror

MARKETS = (
    (2_000, MarketParams()),
    (30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500, maker_fee_bps=0, taker_fee_bps=10)),
)
N_TRADERS = 4
# Price moves in bps: gaps and crashes as often as small ticks.
MOVES = st.sampled_from([-6_000, -4_000, -2_500, -1_200, -600, 600, 1_200, 2_500]) | st.integers(-300, 300)
KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(N_TRADERS)]


class ClearingMachine(RuleBasedStateMachine):
    decimals = 6

    @initialize(vault=st.integers(0, 5_000), margins=st.lists(st.integers(100, 10_000), min_size=N_TRADERS, max_size=N_TRADERS),
                profit=st.booleans())
    def setup(self, vault, margins, profit):
        # Every example starts from the freshly deployed state; chain and model are rolled back after.
        self.sim = SIMS[self.decimals]
        self._anchor = self.sim.anchor()
        self._anchor.__enter__()
        self.u = self.sim.u
        self.accounts = [k.address for k in KEYS] + [self.sim.liquidator]
        if vault and not profit:  # under PROFIT an empty vault: every bankruptcy reaches the clawback
            self.sim.fund_vault(vault * self.u)
        for key, margin in zip(KEYS, margins):
            self.sim.fund(key.address, margin * self.u)
        if profit:  # SOL's residuals go to the accounts in profit (ETH stays OPEN_INTEREST)
            self.sim.set_loss_policy(1, POLICY_PROFIT)

    def teardown(self):
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    def attempt(self, name, step, in_model):
        """Runs ``step`` through the harness (chain, then model). When the chain
        refuses it, the model must refuse it too, for the same reason (checked
        on a copy); when the chain accepts it, the harness has applied it to
        the model, which raises if it refuses."""
        try:
            step()
            accepted = True
        except EngineError as error:
            accepted = False
            model = copy.deepcopy(self.sim.model)
            model.set_time(self.sim.now)
            try:
                in_model(model)
            except ModelError as refusal:
                assert str(refusal) in str(error), (str(refusal), str(error))
            else:
                raise AssertionError(f"chain refused, model accepted: {error}")
        STATS[(name, accepted)] = STATS.get((name, accepted), 0) + 1

    @rule(who=st.integers(0, N_TRADERS), amount=st.integers(1, 20_000))
    def deposit(self, who, amount):
        account, value = self.accounts[who], amount * self.u // 10
        self.attempt("deposit", lambda: self.sim.fund(account, value), lambda m: m.deposit(account, value))

    @rule(who=st.integers(0, N_TRADERS), fraction=st.integers(1, 100))
    def withdraw(self, who, fraction):
        account = self.accounts[who]
        value = max(self.sim.model.collateral.get(account, 0), 1) * fraction // 100 or 1
        self.attempt("withdraw", lambda: self.sim.withdraw(account, value), lambda m: m.withdraw(account, value))

    def size_for(self, accounts, market, use_pct, price):
        """A size that uses ``use_pct`` % of the smallest free margin among ``accounts``."""
        model = self.sim.model
        free = max(min(h.equity - h.initial for h in map(model.health, accounts)), self.u)
        notional = free * 10_000 // model.markets[market].params.imr_bps * use_pct // 100
        return max(notional * WAD // price, 1)

    def fill(self, buy, sell, market, size, price):
        self.attempt(
            "trade",
            lambda: self.sim.trade(buy, sell, market, size, price),
            lambda m: m.trade(buy.address, sell.address, market, size, price, maker=buy.address),
        )

    @rule(
        buyer=st.integers(0, N_TRADERS - 1),
        seller=st.integers(0, N_TRADERS - 1),
        market=st.integers(0, 1),
        use_pct=st.integers(5, 120),
        offset_bps=st.integers(-100, 100),
    )
    def trade(self, buyer, seller, market, use_pct, offset_bps):
        """Two traders fill at up to 1 % off the mark; above 100 % of the
        smaller free margin the fill must be refused."""
        if buyer == seller:
            return
        buy, sell = KEYS[buyer], KEYS[seller]
        price = self.sim.model.markets[market].price * (10_000 + offset_bps) // 10_000
        self.fill(buy, sell, market, self.size_for([buy.address, sell.address], market, use_pct, price), price)

    @rule(market=st.integers(0, 1), move_bps=MOVES, sweep=st.booleans(), size_pct=st.integers(1, 150))
    def move_price(self, market, move_bps, sweep, size_pct):
        STATS[("move", sweep)] = STATS.get(("move", sweep), 0) + 1
        self.sim.set_mark(market, max(self.sim.model.markets[market].price * (10_000 + move_bps) // 10_000, 1))
        if sweep:
            self.keeper_sweep(market, size_pct)

    @rule(market=st.integers(0, 1), rate=st.integers(-(10**14), 10**14))
    def set_funding_rate(self, market, rate):
        self.attempt("funding", lambda: self.sim.set_funding_rate(market, rate), lambda m: m.set_funding_rate(market, rate))

    @rule(seconds=st.integers(1, 3_000))
    def wait(self, seconds):
        self.sim.wait(seconds)
        self.sim.refresh_marks()  # keepers keep the oracle fresh

    @rule(
        who=st.integers(0, N_TRADERS - 1),
        market=st.integers(0, 1),
        long=st.booleans(),
        margin=st.integers(0, 2_000),
        use_pct=st.integers(50, 100),
        gap_bps=st.integers(500, 6_000),
        size_pct=st.integers(1, 150),
    )
    def open_then_gap(self, who, market, long, margin, use_pct, gap_bps, size_pct):
        """A trader deposits ``margin``, levers up against the market maker
        (deep pockets) with half to all of its free margin, the mark gaps
        against it, a keeper sweeps: the cascade in small, and most often a
        bankruptcy."""
        trader, maker = KEYS[who], self.sim.mm
        if margin:
            self.deposit(who, margin * 10)
        price = self.sim.model.markets[market].price
        size = self.size_for([trader.address], market, use_pct, price)
        self.fill(*((trader, maker) if long else (maker, trader)), market, size, price)
        self.move_price(market, -gap_bps if long else gap_bps, True, size_pct)

    @rule(market=st.integers(0, 1), size_pct=st.integers(1, 150))
    def keeper_sweep(self, market, size_pct):
        """A keeper liquidates every account it sees under maintenance: part of
        the position, or all of it when the account is bankrupt (the clearing
        house takes a bankrupt position whole or not at all)."""
        for who in range(N_TRADERS):
            account = self.accounts[who]
            h = self.sim.model.health(account)
            size = abs(self.sim.model.position(account, market).size)
            if size and h.equity < 0 and self.sim.model.markets[market].loss_policy == POLICY_PROFIT:
                self.clawback(who, market)
            elif size and h.equity < h.maintenance:
                self.liquidate(who, market, size if h.equity < 0 else max(size * size_pct // 100, 1))

    @rule(who=st.integers(0, N_TRADERS - 1), market=st.integers(0, 1), size=st.integers(1, 60 * WAD))
    def liquidate(self, who, market, size):
        account, liquidator = self.accounts[who], self.sim.liquidator
        if self.sim.model.collateral.get(liquidator, 0) < 10**9 * self.u:
            self.sim.fund(liquidator, 10**9 * self.u)

        def step():
            if self.sim.liquidate(account, market, size).model.bankruptcy is not None:
                BANKRUPTCIES[self.decimals] += 1

        self.attempt("liquidate", step, lambda m: m.liquidate(account, market, size, liquidator))

    def clawback(self, who, market):
        """PROFIT: the keeper claws a bankrupt account's residual back from the
        accounts in profit (refused, by both, when the vault covers it or it
        holds another position), then takes the position over at the mark."""
        sim, account = self.sim, self.accounts[who]
        candidates = sim.in_profit(market, but=account)
        self.attempt("clawback", lambda: sim.clawback(account, market, candidates),
                     lambda m: m.clawback(account, market, candidates))
        if sim.model.collateral.get(sim.keeper, 0) < 10**9 * self.u:
            sim.fund(sim.keeper, 10**9 * self.u)

        def take_over():
            if sim.liquidate(account, market, by_keeper=True).model.bankruptcy is not None:
                BANKRUPTCIES[self.decimals] += 1

        self.attempt("keeper take-over", take_over, lambda m: m.liquidate(account, market, 10**30, sim.keeper, keeper=True))

    @invariant()
    def chain_equals_model(self):
        if not hasattr(self, "sim"):
            return
        sim, ch, model = self.sim, self.sim.ch, self.sim.model
        for account in self.accounts + [sim.mm.address]:
            assert ch.collateral(account) == model.collateral.get(account, 0)
            for market in range(len(MARKETS)):
                pos, mpos = ch.positions(account, market), model.position(account, market)
                assert (pos[0], pos[1]) == (mpos.size, mpos.open_notional)
            health, mhealth = ch.health(account), model.health(account)
            assert tuple(health) == (mhealth.equity, mhealth.maintenance, mhealth.initial)
        assert ch.total_collateral() == model.total_collateral
        assert ch.total_open_notional() == model.total_open_notional
        assert ch.funding_pool() == model.funding_pool
        assert (ch.protocol_fees(), ch.insurance_fees()) == (model.protocol_fees, model.insurance_fees)
        assert ch.bad_debt() == model.bad_debt
        assert ch.loss_receivable() == model.loss_receivable
        assert sim.token.balanceOf(sim.vault.address) == model.vault_assets
        assert sim.token.balanceOf(ch.address) == model.token_balance
        assert model.ledger_gap() == 0


SIMS = {}
STATS = {}
BANKRUPTCIES = {6: 0, 18: 0}


@pytest.mark.parametrize("decimals", [6, 18])
def test_clearing_house_matches_model(decimals, fuzz_profile):
    STATS.clear()
    SIMS[decimals] = Mirror.in_process(decimals, policies=(POLICY_OPEN_INTEREST, POLICY_OPEN_INTEREST), markets=MARKETS)
    with SIMS[decimals].active():
        machine = type("ClearingMachine", (ClearingMachine,), {"decimals": decimals})
        case = machine.TestCase
        case.settings = settings(
            max_examples={"quick": 15, "ci": 40}[fuzz_profile],
            # The same run on every machine and in any order: no saved example replayed.
            derandomize=True,
            database=None,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        case().runTest()
    # The run must have reached the interesting paths, or it proves little.
    for step in ("trade", "liquidate", "withdraw"):
        assert STATS.get((step, True), 0) >= 5, sorted(STATS.items())
    assert BANKRUPTCIES[decimals] >= 10, (BANKRUPTCIES, sorted(STATS.items()))
    assert STATS.get(("clawback", True), 0) >= 1, sorted(STATS.items())
