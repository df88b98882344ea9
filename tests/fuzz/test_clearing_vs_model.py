"""Stateful fuzzing: the compiled contracts and the exact model never disagree.

Hypothesis drives deposits, signed trades, price moves, funding, time, partial
and full liquidations, bankruptcies and withdrawals against the real contracts,
run in process by titanoboa (hundreds of transactions per second), and applies
the same steps to ``perpclear.model.ClearingModel``. After every step every
account's collateral, position, funding snapshot and health, the fees, the
funding pool, the vault's assets and the bad debt must be equal to the unit,
and the ledger identity must hold. A step the contracts refuse must be refused
by the model too (withdrawals and liquidations carry the same reason).
"""

import copy

import boa
import pytest
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from perpclear.deployment import Listing, Roles, deploy_markets
from perpclear.engine import BoaEngine
from perpclear.model import POLICY_OPEN_INTEREST, WAD, ClearingModel, MarketParams, ModelError
from perpclear.orders import Order, sign_order

MARKETS = (
    (2_000, MarketParams()),
    (30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500, maker_fee_bps=0, taker_fee_bps=10)),
)
N_TRADERS = 4
# Price moves in bps: gaps and crashes as often as small ticks.
MOVES = st.sampled_from([-6_000, -4_000, -2_500, -1_200, -600, 600, 1_200, 2_500]) | st.integers(-300, 300)
KEYS = [Account.from_key(bytes([i + 1]) * 32) for i in range(N_TRADERS)]


def _deploy(decimals):
    """The one deployment (perpclear.deployment.deploy_markets) on a titanoboa
    engine of its own; the traders' keys get tokens and approve the clearing
    house, the insurer approves the vault."""
    unit = 10**decimals
    engine, roles = BoaEngine(), Roles()
    listings = [Listing(price * unit, params, POLICY_OPEN_INTEREST) for price, params in MARKETS]
    d = deploy_markets(engine, decimals, listings, roles)
    c = engine.contracts
    token, vault, ch = c[d.token], c[d.vault], c[d.clearing_house]
    liquidator, insurer = roles.liquidator.address, roles.insurer.address
    with boa.swap_env(engine.env):
        for account in [k.address for k in KEYS] + [liquidator, insurer]:
            token.mint(account, 10**12 * unit, sender=roles.admin.address)
        for account in [k.address for k in KEYS] + [liquidator]:
            token.approve(ch.address, 2**256 - 1, sender=account)
        token.approve(vault.address, 2**256 - 1, sender=insurer)
    return dict(env=engine.env, token=token, oracle=c[d.oracle], vault=vault, ch=ch, book=c[d.order_book],
                keeper=roles.keeper.address, matcher=roles.matcher.address, liquidator=liquidator,
                insurer=insurer, unit=unit)


class ClearingMachine(RuleBasedStateMachine):
    decimals = 6

    @initialize(vault=st.integers(0, 5_000), margins=st.lists(st.integers(100, 10_000), min_size=N_TRADERS, max_size=N_TRADERS))
    def setup(self, vault, margins):
        # Every example starts from the freshly deployed state and is rolled back after.
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.d = DEPLOYED[self.decimals]
        self.ch, self.u = self.d["ch"], self.d["unit"]
        self.model = ClearingModel(now=boa.env.evm.patch.timestamp)
        for price, params in MARKETS:
            self.model.add_market(params, price * self.u, POLICY_OPEN_INTEREST)
        self.accounts = [k.address for k in KEYS] + [self.d["liquidator"]]
        if vault:
            with boa.env.prank(self.d["insurer"]):
                self.d["vault"].deposit(vault * self.u, self.d["insurer"])
            self.model.vault_assets = vault * self.u
        self.nonce = 0
        for key, margin in zip(KEYS, margins):
            with boa.env.prank(key.address):
                self.ch.deposit(margin * self.u)
            self.model.deposit(key.address, margin * self.u)
        self.sync()

    def teardown(self):
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)

    def sync(self):
        self.model.set_time(boa.env.evm.patch.timestamp)

    def attempt(self, name, chain_call, model_call, same_reason=False):
        """Runs a step on both sides; both accept it or both refuse it."""
        backup = copy.deepcopy(self.model)
        try:
            chain_call()
            chain_error = None
        except boa.BoaError as error:
            chain_error = str(error)
        self.sync()
        try:
            model_call()
            model_error = None
        except ModelError as error:
            model_error = str(error)
        STATS[(name, chain_error is None)] = STATS.get((name, chain_error is None), 0) + 1
        if chain_error is not None:
            self.model = backup
            self.sync()
            assert model_error is not None or not same_reason, f"chain refused, model accepted: {chain_error}"
            if same_reason:
                assert model_error in chain_error, (model_error, chain_error)
        else:
            assert model_error is None, f"model refused, chain accepted: {model_error}"

    @rule(who=st.integers(0, N_TRADERS), amount=st.integers(1, 20_000))
    def deposit(self, who, amount):
        account = self.accounts[who]
        value = amount * self.u // 10

        def on_chain():
            with boa.env.prank(account):
                self.ch.deposit(value)

        self.attempt("deposit", on_chain, lambda: self.model.deposit(account, value), same_reason=True)

    @rule(who=st.integers(0, N_TRADERS), fraction=st.integers(1, 100))
    def withdraw(self, who, fraction):
        account = self.accounts[who]
        value = max(self.model.collateral.get(account, 0), 1) * fraction // 100 or 1

        def on_chain():
            with boa.env.prank(account):
                self.ch.withdraw(value)

        self.attempt("withdraw", on_chain, lambda: self.model.withdraw(account, value), same_reason=True)

    @rule(
        buyer=st.integers(0, N_TRADERS - 1),
        seller=st.integers(0, N_TRADERS - 1),
        market=st.integers(0, 1),
        use_pct=st.integers(5, 120),
        offset_bps=st.integers(-100, 100),
    )
    def trade(self, buyer, seller, market, use_pct, offset_bps):
        if buyer == seller:
            return
        price = self.model.markets[market].price * (10_000 + offset_bps) // 10_000
        # Uses `use_pct` of the smaller free margin: above 100 % the fill must be refused.
        healths = [self.model.health(KEYS[i].address) for i in (buyer, seller)]
        free = max(min(h.equity - h.initial for h in healths), self.u)
        notional = free * 10_000 // self.model.markets[market].params.imr_bps * use_pct // 100
        size = max(notional * WAD // price, 1)
        self.nonce += 1
        expiry = boa.env.evm.patch.timestamp + 100
        buy = Order(KEYS[buyer].address, market, True, size, price, expiry, self.nonce)
        sell = Order(KEYS[seller].address, market, False, size, price, expiry, self.nonce)
        chain_id = boa.env.evm.patch.chain_id
        buy_sig = sign_order(KEYS[buyer].key, buy, chain_id, self.d["book"].address)
        sell_sig = sign_order(KEYS[seller].key, sell, chain_id, self.d["book"].address)

        def on_chain():
            with boa.env.prank(self.d["matcher"]):
                self.d["book"].settle(buy.as_tuple(), buy_sig, sell.as_tuple(), sell_sig, size, price)

        def in_model():
            self.model.trade(buy.trader, sell.trader, market, size, price, maker=buy.trader)

        self.attempt("trade", on_chain, in_model, same_reason=True)

    @rule(market=st.integers(0, 1), move_bps=MOVES, sweep=st.booleans(), size_pct=st.integers(1, 150))
    def move_price(self, market, move_bps, sweep, size_pct):
        STATS[("move", sweep)] = STATS.get(("move", sweep), 0) + 1
        price = max(self.model.markets[market].price * (10_000 + move_bps) // 10_000, 1)
        with boa.env.prank(self.d["keeper"]):
            self.d["oracle"].set_price(market, price)
        self.model.set_price(market, price)
        if sweep:
            self.keeper_sweep(market, size_pct)

    @rule(market=st.integers(0, 1), rate=st.integers(-(10**14), 10**14))
    def set_funding_rate(self, market, rate):
        def on_chain():
            with boa.env.prank(self.d["keeper"]):
                self.ch.set_funding_rate(market, rate)

        self.attempt("funding", on_chain, lambda: self.model.set_funding_rate(market, rate), same_reason=True)

    @rule(seconds=st.integers(1, 3_000))
    def wait(self, seconds):
        boa.env.time_travel(seconds=seconds)
        with boa.env.prank(self.d["keeper"]):  # keepers keep the oracle fresh
            self.d["oracle"].set_prices([0, 1], [m.price for m in self.model.markets])
        self.sync()

    @rule(
        buyer=st.integers(0, N_TRADERS - 1),
        seller=st.integers(0, N_TRADERS - 1),
        market=st.integers(0, 1),
        use_pct=st.integers(50, 100),
        hurt_buyer=st.booleans(),
        gap_bps=st.integers(500, 6_000),
        size_pct=st.integers(1, 150),
    )
    def open_then_gap(self, buyer, seller, market, use_pct, hurt_buyer, gap_bps, size_pct):
        """A leveraged fill, a gap against one side, a keeper sweep: the cascade in small."""
        self.trade(buyer, seller, market, use_pct, 0)
        self.move_price(market, -gap_bps if hurt_buyer else gap_bps, True, size_pct)

    @rule(market=st.integers(0, 1), size_pct=st.integers(1, 150))
    def keeper_sweep(self, market, size_pct):
        """A keeper liquidates every account it sees under maintenance: part of
        the position, or all of it when the account is bankrupt (the clearing
        house takes a bankrupt position whole or not at all)."""
        for who in range(N_TRADERS):
            account = self.accounts[who]
            h = self.model.health(account)
            size = abs(self.model.position(account, market).size)
            if size and h.equity < h.maintenance:
                self.liquidate(who, market, size if h.equity < 0 else max(size * size_pct // 100, 1))

    @rule(who=st.integers(0, N_TRADERS - 1), market=st.integers(0, 1), size=st.integers(1, 60 * WAD))
    def liquidate(self, who, market, size):
        account = self.accounts[who]
        liquidator = self.d["liquidator"]
        if self.model.collateral.get(liquidator, 0) < 10**9 * self.u:
            with boa.env.prank(liquidator):
                self.ch.deposit(10**9 * self.u)
            self.model.deposit(liquidator, 10**9 * self.u)

        def on_chain():
            with boa.env.prank(liquidator):
                self.ch.liquidate(account, market, size, False)

        self.attempt("liquidate", on_chain, lambda: self.count(self.model.liquidate(account, market, size, liquidator)), same_reason=True)

    def count(self, liquidation):
        if liquidation.bankruptcy is not None:
            BANKRUPTCIES[self.decimals] += 1

    @invariant()
    def chain_equals_model(self):
        if not hasattr(self, "model"):
            return
        ch, model = self.ch, self.model
        for account in self.accounts:
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
        assert self.d["token"].balanceOf(self.d["vault"].address) == model.vault_assets
        assert self.d["token"].balanceOf(ch.address) == model.token_balance
        assert model.ledger_gap() == 0


DEPLOYED = {}
STATS = {}
BANKRUPTCIES = {6: 0, 18: 0}


@pytest.mark.parametrize("decimals", [6, 18])
def test_clearing_house_matches_model(decimals, fuzz_profile):
    STATS.clear()
    DEPLOYED[decimals] = _deploy(decimals)
    with boa.swap_env(DEPLOYED[decimals]["env"]):
        machine = type("ClearingMachine", (ClearingMachine,), {"decimals": decimals})
        case = machine.TestCase
        case.settings = settings(
            max_examples={"quick": 15, "ci": 40}[fuzz_profile],
            derandomize=True,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        case().runTest()
    # The run must have reached the interesting paths, or it proves little.
    for step in ("trade", "liquidate", "withdraw"):
        assert STATS.get((step, True), 0) >= 5, sorted(STATS.items())
    assert BANKRUPTCIES[decimals] >= 5, (BANKRUPTCIES, sorted(STATS.items()))
