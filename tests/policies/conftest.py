"""Harness of the loss-policy tests: the whole system in titanoboa, the exact
reference model beside it, and populations of many accounts.

``Sim`` deploys the system (perpclear.deployment) in its own ``boa.Env`` (two
markets: 0 = ETH at 2_000, 1 = SOL at 30, whole units) and
mirrors every action into ``perpclear.model.ClearingModel``. Every
state-changing call made through ``Sim`` is followed by the ledger identity of
the clearing house, to the unit (docs/loss-policies.md, "Ledger"), except the bulk
population build (``check=False``), which is checked once at its end.

``Population`` (one per collateral decimals) builds, once per session and per
size N, a ``Sim`` with N "other" accounts (distinct keys
``Account.from_key(i.to_bytes(32, "big"))``, positions opened by signed trades
against one market maker, both sides, leverage 1x to 8x, every third account
in both markets). ``pop.at(n)`` yields it inside a ``boa.env.anchor()`` with
the model copied, so each test starts from the same N accounts and leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import copy
import random
from dataclasses import dataclass
from pathlib import Path

import boa
import pytest
from eth_account import Account

from perpclear.deployment import Listing, Roles, deploy_markets
from perpclear.engine import BoaEngine
from perpclear.model import POLICY_ADL, POLICY_EQUITY, POLICY_OPEN_INTEREST, WAD, ClearingModel, MarketParams
from perpclear.units import EQUITY_SCALE, equity_scale
from perpclear.orders import Order, sign_order

ROOT = Path(__file__).resolve().parents[2]
HUGE = 10**30  # "everything" as a liquidation size
ETH, SOL = 0, 1
MARKETS = (
    (2_000, MarketParams()),  # imr 10 %, mmr 5 %, penalty 2.5 %
    (30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500)),
)
EXPIRY = 2**40
# Private keys of the population (the ith other account); roles use other ranges.
POP_KEY_BASE = 1_000_000
SCALE = EQUITY_SCALE  # the EQUITY module's fixed point


@functools.lru_cache(maxsize=None)
def key(i: int):
    return Account.from_key(i.to_bytes(32, "big"))


@dataclass
class Liq:
    """What one chain liquidation emitted, with the model's view of it."""

    logs: list
    bankrupt: object  # AccountBankrupt event or None
    socialized: object  # LossSocialized event or None
    recorded: object  # ResidualRecorded event or None
    model: object  # perpclear.model.Liquidation
    computation: object  # the boa computation of the liquidation (gas used, refund)


def _by_name(logs, name):
    return [log for log in logs if type(log).__name__ == name or getattr(log, "event_type", None) and log.event_type.name == name]


class Sim:
    def __init__(self, decimals: int, policies=(POLICY_EQUITY, POLICY_EQUITY), vault_assets: int = 0,
                 liquidator_margin: int = 10**9, mm_margin: int = 10**7, extra_markets: tuple = ()):
        """``extra_markets``: (whole price, MarketParams) of EQUITY markets listed after ETH and SOL."""
        self.charged: dict[str, int] = {}  # EQUITY charges settled per account, from LossSettled
        markets = MARKETS + tuple(extra_markets)
        policies = tuple(policies) + (POLICY_EQUITY,) * len(extra_markets)
        self.decimals = decimals
        self.u = 10**decimals
        self._deploy(markets, policies)
        self.model = ClearingModel(now=self.env.evm.patch.timestamp)
        for (price, params), policy in zip(markets, policies):
            self.model.add_market(params, price * self.u, policy)
        self.nonce = 0
        self.mm = key(7_000_001)
        self.liq_key = key(7_000_002)
        self.liquidator = self.liq_key.address
        self.chain_id = self.env.evm.patch.chain_id
        with self.active():
            self.fund(self.liquidator, liquidator_margin * self.u)
            self.fund(self.mm.address, mm_margin * self.u)
            if vault_assets:
                self.fund_vault(vault_assets)

    # ------------------------------------------------------------ set-up

    def _deploy(self, markets, policies):
        """The one deployment (perpclear.deployment.deploy_markets) on a titanoboa
        engine of its own; the contracts as boa objects, the roles by address."""
        engine = BoaEngine()
        roles = Roles()
        listings = [Listing(price * self.u, params, policy) for (price, params), policy in zip(markets, policies)]
        d = deploy_markets(engine, self.decimals, listings, roles)
        self.env = engine.env
        self.admin, self.keeper, self.matcher, self.insurer = (
            r.address for r in (roles.admin, roles.keeper, roles.matcher, roles.insurer))
        c = engine.contracts
        self.token, self.oracle, self.vault, self.ch = c[d.token], c[d.oracle], c[d.vault], c[d.clearing_house]
        self.book, self.adl, self.lens, self.keeper_contract = c[d.order_book], c[d.deleverager], c[d.lens], c[d.keeper]

    @contextlib.contextmanager
    def active(self):
        with boa.swap_env(self.env):
            yield self

    @contextlib.contextmanager
    def anchor(self):
        """Runs the body on a snapshot of chain and model, both restored after."""
        model = copy.deepcopy(self.model)
        nonce, charged = self.nonce, dict(self.charged)
        with boa.swap_env(self.env), self.env.anchor():
            try:
                yield self
            finally:
                self.model, self.nonce, self.charged = model, nonce, charged

    def new_transaction(self):
        """Makes the next call price storage like the first call of a transaction.

        boa applies calls as messages without transaction boundaries: warm
        slots and EIP-2200 "original" values carry over from earlier calls
        (an earlier write makes a later SSTORE cost 100). Locking the journal
        commits the pending writes and resets the access lists, so the next
        call's gas is what a node would charge. Not inside ``anchor()``: it
        flattens the journal that the snapshot would revert to.
        """
        self.env.evm.vm.state.lock_changes()

    def end_transaction(self):
        """Ends a transaction's EIP-1153 storage (the clearing house's
        per-transaction bankruptcy price): boa keeps it across calls."""
        self.env.evm.vm.state.clear_transient_storage()

    def _logs(self, contract) -> list:
        """The last call's logs; its EQUITY settlements are added to ``charged``."""
        logs = contract.get_logs()
        for settled in _by_name(logs, "LossSettled"):
            self.charged[settled.account] = self.charged.get(settled.account, 0) + settled.charge
        return logs

    def loss_charged(self, account: str) -> int:
        """EQUITY charges settled into ``account`` so far (the sum of its LossSettled)."""
        return self.charged.get(account, 0)

    @property
    def now(self) -> int:
        return self.env.evm.patch.timestamp

    def sync(self):
        self.model.set_time(self.now)

    # ------------------------------------------------------------ checks

    def ledger_gap(self) -> int:
        ch = self.ch
        lhs = self.token.balanceOf(ch.address) + ch.bad_debt() + ch.loss_receivable()
        rhs = ch.total_collateral() - ch.total_open_notional() + ch.funding_pool() + ch.protocol_fees() + ch.insurance_fees()
        return lhs - rhs

    def check(self):
        gap = self.ledger_gap()
        assert gap == 0, f"ledger identity broken on chain by {gap}"
        assert self.model.ledger_gap() == 0, "ledger identity broken in the model"

    def check_accounts(self, accounts):
        """Aggregates equal the sums over every account (the vault's margin account included)."""
        accounts = set(accounts) | {self.vault.address, self.liquidator, self.mm.address}
        total = sum(self.ch.collateral(a) for a in accounts)
        assert total == self.ch.total_collateral(), (total, self.ch.total_collateral())

    # ------------------------------------------------------------ actions

    def mint(self, account: str, amount: int):
        """Tokens to a wallet (not deposited), approved for the clearing house."""
        with boa.env.prank(self.admin):
            self.token.mint(account, amount)
        with boa.env.prank(account):
            self.token.approve(self.ch.address, 2**256 - 1)

    def fund(self, account: str, amount: int, check: bool = True):
        self.mint(account, amount)
        self.deposit(account, amount, check)

    def fund_vault(self, amount: int):
        with boa.env.prank(self.admin):
            self.token.mint(self.insurer, amount)
        with boa.env.prank(self.insurer):
            self.token.approve(self.vault.address, amount)
            self.vault.deposit(amount, self.insurer)
        self.model.vault_assets += amount
        self.check()

    def deposit(self, account: str, amount: int, check: bool = True):
        with boa.env.prank(account):
            self.ch.deposit(amount)
        logs = self._logs(self.ch)
        self.sync()
        self.model.deposit(account, amount)
        if check:
            self.check()
        return logs

    def withdraw(self, account: str, amount: int, check: bool = True):
        with boa.env.prank(account):
            self.ch.withdraw(amount)
        logs = self._logs(self.ch)
        self.sync()
        self.model.withdraw(account, amount)
        if check:
            self.check()
        return logs

    def trade(self, buyer, seller, market: int, size: int, price: int, check: bool = True):
        """A signed fill, the buyer's order as maker; buyer/seller are eth-account keys."""
        self.nonce += 1
        buy = Order(buyer.address, market, True, size, price, EXPIRY, self.nonce)
        sell = Order(seller.address, market, False, size, price, EXPIRY, self.nonce)
        buy_sig = sign_order(buyer.key, buy, self.chain_id, self.book.address)
        sell_sig = sign_order(seller.key, sell, self.chain_id, self.book.address)
        with boa.env.prank(self.matcher):
            self.book.settle(buy.as_tuple(), buy_sig, sell.as_tuple(), sell_sig, size, price)
        logs = self._logs(self.book)
        self.sync()
        self.model.trade(buyer.address, seller.address, market, size, price, maker=buyer.address)
        if check:
            self.check()
        return logs

    def open(self, trader, market: int, size: int, check: bool = True):
        """Opens a signed ``size`` (> 0 long) for ``trader`` against the market maker at the mark."""
        price = self.model.markets[market].price
        if size > 0:
            return self.trade(trader, self.mm, market, size, price, check)
        return self.trade(self.mm, trader, market, -size, price, check)

    def set_price(self, market: int, price: int):
        with boa.env.prank(self.keeper):
            self.oracle.set_price(market, price)
        self.model.set_price(market, price)

    def move(self, market: int, bps: int):
        self.set_price(market, self.model.markets[market].price * (10_000 + bps) // 10_000)

    def set_policy(self, market: int, policy: int):
        with boa.env.prank(self.admin):
            self.ch.set_loss_policy(market, policy)
        self.model.markets[market].loss_policy = policy

    def liquidate(self, account: str, market: int, size: int = HUGE, by_keeper: bool = False, by: str | None = None) -> Liq:
        """``by``: the taker's address (default: the neutral liquidator, or the keeper)."""
        liquidator = by or (self.keeper if by_keeper else self.liquidator)
        with boa.env.prank(liquidator):
            self.ch.liquidate(account, market, size, False)
        computation = self.ch._computation
        logs = self._logs(self.ch)
        self.sync()
        result = self.model.liquidate(account, market, size, liquidator, keeper=by_keeper)
        self.check()
        one = lambda name: (_by_name(logs, name) or [None])[0]  # noqa: E731
        return Liq(logs, one("AccountBankrupt"), one("LossSocialized"), one("ResidualRecorded"), result, computation)

    def deleverage(self, account: str, market: int, candidates: list[str]):
        """Deleverager.deleverage by the keeper, mirrored in the model; returns (logs, model result, computation)."""
        with boa.env.prank(self.keeper):
            self.adl.deleverage(account, market, candidates)
        self.end_transaction()
        computation = self.adl._computation
        logs = self._logs(self.adl)
        self.sync()
        result = self.model.deleverage(account, market, list(candidates))
        self.check()
        return logs, result, computation

    def settle(self, account: str) -> tuple[int, int, list]:
        """settle_funding(account) on chain and the model's touch; returns (chain charge, model charge, logs)."""
        model_charge = self.model.settle_loss(account)
        self.model.touch(account)
        with boa.env.prank(self.keeper):
            self.ch.settle_funding(account)
        self.last_computation = self.ch._computation
        logs = self._logs(self.ch)
        self.sync()
        settled = _by_name(logs, "LossSettled")
        assert len(settled) <= 1
        charge = settled[0].charge if settled else 0
        self.check()
        return charge, model_charge, logs

    # ------------------------------------------------------------ victims

    def victim(self, index: int, market: int, margin: int, leverage_pct: int, long: bool = True):
        """A fresh account with ``margin`` and a position of ``leverage_pct`` % of it."""
        trader = key(index)
        self.fund(trader.address, margin)
        price = self.model.markets[market].price
        size = margin * leverage_pct // 100 * WAD // price
        self.open(trader, market, size if long else -size)
        return trader


class Population:
    """Populations of N other accounts for one collateral decimals, one Sim per N,
    built once (see the module docstring) and reused by every test."""

    def __init__(self, decimals: int):
        self.decimals = decimals
        self.sims: dict[int, Sim] = {}

    @property
    def members(self) -> list:
        """Addresses of the population accounts, in order (the first N form population N)."""
        return [key(POP_KEY_BASE + i).address for i in range(max(self.sims, default=0))]

    def build(self, n: int) -> Sim:
        sim = Sim(self.decimals)
        populate(sim, n)
        return sim

    @contextlib.contextmanager
    def at(self, n: int):
        if n not in self.sims:
            self.sims[n] = self.build(n)
        with self.sims[n].anchor() as sim:
            yield sim


def populate(sim: Sim, n: int):
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


def tx_gas(computation, calldata: bytes) -> int:
    """Whole-transaction gas of a boa call: intrinsic 21_000 + calldata + execution - refund (EIP-3529 cap)."""
    intrinsic = 21_000 + sum(16 if b else 4 for b in calldata)
    used = intrinsic + computation.get_gas_used()
    return used - min(computation.get_gas_refund(), used // 5)


@pytest.fixture(scope="session")
def h():
    """The harness for the test modules (a conftest cannot be imported reliably)."""
    import types

    return types.SimpleNamespace(
        Sim=Sim, Population=Population, populate=populate, key=key, tx_gas=tx_gas, by_name=_by_name,
        ETH=ETH, SOL=SOL, HUGE=HUGE, WAD=WAD, SCALE=SCALE, equity_scale=equity_scale, MARKETS=MARKETS,
        EQUITY=POLICY_EQUITY, OPEN_INTEREST=POLICY_OPEN_INTEREST, ADL=POLICY_ADL,
    )
