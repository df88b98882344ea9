"""The tests' harness: one deployed system and the exact reference model
(``ClearingModel``) driven side by side, every action sent to both
(``Mirror``), on any engine of ``perpclear.engine``.

- ``Mirror.on_system(system)`` (the ``mirror`` fixture): the ape ``System``
  of a test, on ape's embedded chain or anvil (``ChainEngine``). The clearing
  unit tests and the end-to-end story use it.
- ``Mirror.in_process(decimals, ...)``: a fresh system on titanoboa (or revm),
  hundreds of transactions per second. The loss-policy tests (tests/policies)
  and the stateful fuzzing use it.

Every action is sent to the chain first; the model's clock is then moved to the
chain's (on a node: the mined block's timestamp) and the same action is applied
to the model, so funding (which accrues per second) sees exactly the same
elapsed time on both sides. After each action the ledger identity is checked on
both sides (``check``); ``agree(*accounts)`` compares accounts, markets and
aggregates unit for unit. Views run at the latest block, which is the model's
clock after every action and after ``wait``.

Loss policies. OPEN_INTEREST (integer funding-index moves) and ADL are compared
exactly. EQUITY is not: the chain books the rate with 36-digit fixed point
against a conservative sum of equity D, the model with exact rationals, so the
chain charges each account the model's r * e rounded up, give or take a unit.
Wherever an EQUITY charge can reach (an account's collateral once settled, its
equity before), ``agree`` allows one unit per EQUITY socialization; the
aggregates it moves (total collateral, the loss receivable) one unit per
settled account.

Usage::

    mirror = Mirror.in_process(6)           # or Mirror.on_system(system)
    mirror.fund(trader, 1_000 * mirror.u)
    mirror.trade(buyer, seller, 0, WAD, 2_000 * mirror.u)
    mirror.wait(600)
    mirror.settle(buyer)
    mirror.agree(buyer, seller)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import boa
from eth_account import Account

from perpclear.deployment import Deployment, Listing, Roles, deploy_markets
from perpclear.engine import IN_PROCESS, Tx
from perpclear.model import POLICY_EQUITY, WAD, ClearingModel, MarketParams
from perpclear.units import EQUITY_SCALE


def helper_contract(path: Path) -> Any:
    """A test-only Vyper contract (not a project contract) as an ape container,
    compiled by vyper in this process: ape's ``compile_source`` writes a
    temporary file at the project root, which two xdist workers raced on."""
    import vyper
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    out = vyper.compile_code(path.read_text(), output_formats=["abi", "bytecode", "bytecode_runtime"])
    return ContractContainer(ContractType.model_validate({
        "contractName": path.stem, "abi": out["abi"],
        "deploymentBytecode": {"bytecode": out["bytecode"]}, "runtimeBytecode": {"bytecode": out["bytecode_runtime"]},
    }))


def addr(account: Any) -> str:
    """Checksummed address of an ape account or contract, or of a string."""
    return str(getattr(account, "address", account))


HUGE = 10**30  # "everything" as a liquidation size
ETH, SOL = 0, 1
MARKETS = (
    (2_000, MarketParams()),  # imr 10 %, mmr 5 %, penalty 2.5 %
    (30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500)),
)
SCALE = EQUITY_SCALE  # the EQUITY module's fixed point


@functools.lru_cache(maxsize=None)
def key(i: int):
    return Account.from_key(i.to_bytes(32, "big"))


@dataclass(frozen=True)
class Unsigned:
    """A sender known by its address only: the in-process engines run its
    transactions without a signature (titanoboa pranks it, revm sets the caller)."""

    address: str


class Events(list):
    """The events of one transaction, in order, and the time it was mined at."""

    timestamp: int = 0


@dataclass
class Liq:
    """What one chain liquidation emitted, with the model's view of it."""

    events: list
    bankrupt: object  # AccountBankrupt event or None
    socialized: object  # LossSocialized event or None
    recorded: object  # ResidualRecorded event or None
    model: object  # perpclear.model.Liquidation
    computation: object  # on titanoboa: its record of the transaction (gas used, refund); else None


def by_name(events, name):
    """The events called ``name``: engine events, or titanoboa's own (a contract's ``get_logs()``)."""
    return [e for e in events if getattr(e, "name", None) == name or type(e).__name__ == name
            or getattr(e, "event_type", None) is not None and e.event_type.name == name]


class Mirror:
    """One deployed system on any engine and one ``ClearingModel``, in lock step.

    Build it with ``Mirror.on_system(system)`` (ape's chains) or
    ``Mirror.in_process(decimals, ...)`` (a fresh system on titanoboa or
    revm). Accounts are given as ape accounts, eth-account keys or addresses
    (an address alone signs nothing: in process only). ``ch``, ``lens``,
    ``token``, ``oracle``, ``vault``, ``book``, ``adl``, ``profit`` and ``keeper_contract``
    are the engine's own handles, for a test's direct calls: ape contracts on
    a ``System``, titanoboa contracts on titanoboa.
    """

    def __init__(self, deployment: Deployment, listings: list[Listing], native: dict[str, Any],
                 liquidator: Any = None, market_maker: Any = None, insurer: Any = None, system: Any = None):
        """``liquidator``, ``market_maker``, ``insurer``: keys for those parts
        (default: the deployment's roles)."""
        self.d, self.engine, self.system = deployment, deployment.engine, system
        d, roles = deployment, deployment.roles
        self.u = 10**d.decimals
        self.decimals = d.decimals
        for name, handle in native.items():
            setattr(self, name, handle)
        self.mm = market_maker or roles.market_maker
        self.liq_key = liquidator or roles.liquidator
        self.liquidator = self.liq_key.address
        self.insurer_key = insurer or roles.insurer
        if insurer is None:  # the role's key holds no gas on a node (a test account given does)
            self.engine.fund_gas([self.insurer_key])
        self.admin, self.keeper, self.matcher, self.insurer = (
            r.address for r in (roles.admin, roles.keeper, roles.matcher, self.insurer_key))
        self.keys = {k.address: k for k in [*roles.all(), self.mm, self.liq_key, self.insurer_key]}
        self.model = ClearingModel(now=self.now)
        for market, listing in enumerate(listings):
            state = self.view(d.lens, "markets", market)
            self.model.add_market(listing.params, self.view(d.oracle, "price", market), state.loss_policy)
            m = self.model.markets[market]
            m.last_accrual, m.funding_rate = state.last_accrual, state.funding_rate
            m.long_index, m.short_index = state.long_index, state.short_index
            m.max_age = self.view(d.oracle, "max_age", market)
            m.updated_at = self.view(d.oracle, "last_price", market)[1]
        self.model.token_balance = self.view(d.token, "balanceOf", d.clearing_house)
        self.model.vault_assets = self.view(d.vault, "idle_assets")
        # EQUITY socializations so far: each may leave a unit of rounding in
        # every account it charged (see the module docstring).
        self.equity_socializations = 0
        self.charged: dict[str, int] = {}  # EQUITY charges settled per account, from LossSettled
        self.computation = None  # titanoboa's record of the last transaction sent through the mirror

    @classmethod
    def on_system(cls, system: Any, insurer: Any = None) -> "Mirror":
        """The mirror of an ape ``System`` (the tests' ``system`` fixture), on
        its chain; ``insurer``: the ape account that funds the vault."""
        listings = [Listing(m.price * system.unit, m.params, m.loss_policy) for m in system.markets]
        native = {"ch": system.clearing_house, "lens": system.lens, "token": system.token, "oracle": system.oracle,
                  "vault": system.vault, "book": system.order_book, "adl": system.deleverager, "profit": system.profit_policy,
                  "keeper_contract": system.keeper_contract, "timelock": system.timelock}
        key = Account.from_key(insurer.private_key) if insurer is not None else None
        return cls(system.deployment, listings, native, insurer=key, system=system)

    @classmethod
    def in_process(cls, decimals: int, policies=(POLICY_EQUITY, POLICY_EQUITY), vault_assets: int = 0,
                   liquidator_margin: int = 10**9, mm_margin: int = 10**7, extra_markets: tuple = (),
                   markets: tuple = MARKETS, engine: str = "boa") -> "Mirror":
        """A fresh system deployed by ``perpclear.deployment.deploy_markets`` on
        an in-process engine (titanoboa by default: its contracts answer the
        tests' direct calls). ``markets``: (whole price, MarketParams) of each
        market, with ``policies``; ``extra_markets``: more of them, EQUITY,
        listed after. A neutral liquidator and a market maker are funded with
        ``liquidator_margin`` and ``mm_margin`` whole tokens; the vault with
        ``vault_assets`` units."""
        markets = tuple(markets) + tuple(extra_markets)
        policies = tuple(policies) + (POLICY_EQUITY,) * len(extra_markets)
        u = 10**decimals
        listings = [Listing(price * u, params, policy) for (price, params), policy in zip(markets, policies)]
        backend = IN_PROCESS[engine]()
        d = deploy_markets(backend, decimals, listings, Roles())
        names = {"token": d.token, "oracle": d.oracle, "vault": d.vault, "ch": d.clearing_house, "book": d.order_book,
                 "adl": d.deleverager, "profit": d.profit_policy, "lens": d.lens, "keeper_contract": d.keeper, "timelock": d.timelock}
        native = {n: backend.contracts[a] for n, a in names.items()} if engine == "boa" else {}
        mirror = cls(d, listings, native, liquidator=key(7_000_002), market_maker=key(7_000_001))
        with mirror.active():
            mirror.fund(mirror.liquidator, liquidator_margin * u)
            mirror.fund(mirror.mm.address, mm_margin * u)
            if vault_assets:
                mirror.fund_vault(vault_assets)
        return mirror

    # ------------------------------------------------------------ the chain

    def signer(self, account: Any) -> Any:
        """The key that sends for ``account`` (see the class docstring)."""
        if isinstance(account, str):
            return self.keys.get(account) or Unsigned(account)
        if hasattr(account, "key") or isinstance(account, Unsigned):
            return account
        found = self.keys.get(str(account.address))
        if found is None:  # an ape test account
            found = self.keys[str(account.address)] = Account.from_key(account.private_key)
        return found

    def send(self, sender: Any, contract: str, fn: str, *args: Any) -> Events:
        """``sender`` calls ``contract.fn(*args)``: one transaction; its events."""
        return self._send(self.d.tx(self.signer(sender), contract, fn, *args))

    def _send(self, tx: Tx) -> Events:
        """Sends ``tx``. The EQUITY charges it settled are counted, and on a
        ``System`` the accounts it touched are watched by the ledger guard
        (tests/conftest.py)."""
        (sent,) = self.engine.send([tx])
        events = Events(sent)
        for settled in by_name(events, "LossSettled"):
            self.charged[settled.account] = self.charged.get(settled.account, 0) + settled.charge
        if self.system is not None:
            self.system.accounts.update(e.account for e in events if e.name in ("Deposited", "PositionChanged"))
            errors = self.system.conservation_errors()
            assert not errors, f"conservation broken after {tx.fn}: {errors}"
        self.computation = getattr(self.engine, "last_computation", None)
        self.sync()
        events.timestamp = self.model.now
        return events

    def view(self, contract: str, fn: str, *args: Any) -> Any:
        return self.engine.call(contract, fn, *args)

    def ch_view(self, fn: str, *args: Any) -> Any:
        return self.engine.call(self.d.clearing_house, fn, *args)

    @contextlib.contextmanager
    def active(self):
        """The engine's own handles answer inside (titanoboa: its environment)."""
        env = getattr(self.engine, "env", None)
        with boa.swap_env(env) if env is not None else contextlib.nullcontext():
            yield self

    @contextlib.contextmanager
    def anchor(self):
        """Runs the body on a snapshot of chain and model, both restored after."""
        model = copy.deepcopy(self.model)
        saved = self.d.nonce, dict(self.charged), self.equity_socializations
        with self.active(), self.engine.snapshot():
            try:
                yield self
            finally:
                self.model = model
                self.d.nonce, self.charged, self.equity_socializations = saved

    def new_transaction(self):
        """titanoboa: makes the next call price storage like the first call of a transaction.

        titanoboa applies calls as messages without transaction boundaries:
        warm slots and EIP-2200 "original" values carry over from earlier
        calls (an earlier write makes a later SSTORE cost 100). Locking the
        journal commits the pending writes and resets the access lists, so the
        next call's gas is what a node would charge. Not inside ``anchor()``:
        it flattens the journal that the snapshot would revert to.
        """
        self.engine.env.evm.vm.state.lock_changes()

    def end_transaction(self):
        """titanoboa: ends a transaction's EIP-1153 storage (the clearing house's
        per-transaction bankruptcy price) after a test's own call; the engine
        does so after each of the mirror's."""
        self.engine.env.evm.vm.state.clear_transient_storage()

    # ------------------------------------------------------------ clock

    @property
    def now(self) -> int:
        return self.engine.timestamp()

    def sync(self) -> None:
        """Moves the model's clock to the chain's (the last mined transaction's block)."""
        self.model.set_time(self.now)

    def wait(self, seconds: int) -> None:
        """``seconds`` pass (on a node: one empty block); views then run at the new time."""
        self.engine.advance(seconds)
        self.sync()

    def refresh_marks(self) -> None:
        """The keeper pushes every mark again, unchanged (they are fresh from now)."""
        prices = [m.price for m in self.model.markets]
        self.send(self.keeper, self.d.oracle, "set_prices", list(range(len(prices))), prices)
        for market, price in enumerate(prices):
            self.model.set_price(market, price)

    def loss_charged(self, account: Any) -> int:
        """EQUITY charges settled into ``account`` so far (the sum of its LossSettled)."""
        return self.charged.get(addr(account), 0)

    # ------------------------------------------------------------ actions

    def mint(self, account: Any, amount: int) -> None:
        """Tokens to a wallet (not deposited), approved for the clearing house."""
        self.send(self.admin, self.d.token, "mint", addr(account), amount)
        self.send(account, self.d.token, "approve", self.d.clearing_house, 2**256 - 1)

    def fund(self, account: Any, amount: int, check: bool = True) -> list:
        self.mint(account, amount)
        return self.deposit(account, amount, check)

    def deposit(self, account: Any, amount: int, check: bool = True) -> list:
        return self._margin(account, "deposit", amount, check)

    def withdraw(self, account: Any, amount: int, check: bool = True) -> list:
        return self._margin(account, "withdraw", amount, check)

    def _margin(self, account: Any, action: str, amount: int, check: bool) -> list:
        """``account`` deposits or withdraws ``amount``, on chain and in the model."""
        events = self.send(account, self.d.clearing_house, action, amount)
        getattr(self.model, action)(addr(account), amount)
        if check:
            self.check()
        return events

    def fund_vault(self, amount: int) -> list:
        """The insurer mints ``amount`` and deposits it into the insurance vault."""
        self.send(self.admin, self.d.token, "mint", self.insurer, amount)
        self.send(self.insurer, self.d.token, "approve", self.d.vault, amount)
        events = self.send(self.insurer, self.d.vault, "deposit", amount, self.insurer)
        self.model.vault_assets += amount
        self.check()
        return events

    def fund_backstop(self, amount: int) -> list:
        """The vault's owner (admin) moves idle vault collateral into its margin account."""
        events = self.send(self.admin, self.d.vault, "fund_backstop", amount)
        self.model.vault_assets -= amount
        self.model.deposit(self.d.vault, amount)
        return events

    def trade(self, buyer: Any, seller: Any, market: int, size: int, price: int, maker: str = "buyer",
              check: bool = True) -> list:
        """A signed fill of ``size`` at ``price`` (``maker``: whose order rests in the book)."""
        events = self._send(self.d.order_pair(self.signer(buyer), self.signer(seller), market, size, price,
                                              self.d.next_nonce(), maker))
        self.model.trade(addr(buyer), addr(seller), market, size, price, addr(buyer) if maker == "buyer" else addr(seller))
        if check:
            self.check()
        return events

    def open(self, trader: Any, market: int, size: int, check: bool = True) -> list:
        """Opens a signed ``size`` (> 0 long) for ``trader`` against the market maker at the mark."""
        price = self.model.markets[market].price
        if size > 0:
            return self.trade(trader, self.mm, market, size, price, check=check)
        return self.trade(self.mm, trader, market, -size, price, check=check)

    def set_mark(self, market: int, price: int) -> list:
        events = self.send(self.keeper, self.d.oracle, "set_price", market, price)
        self.model.set_price(market, price)
        return events

    def move(self, market: int, bps: int) -> list:
        return self.set_mark(market, self.model.markets[market].price * (10_000 + bps) // 10_000)

    def set_funding_rate(self, market: int, rate: int) -> list:
        events = self.send(self.keeper, self.d.clearing_house, "set_funding_rate", market, rate)
        self.model.set_funding_rate(market, rate)
        return events

    def set_market_params(self, market: int, **changes: Any) -> list:
        params = dataclasses.replace(self.model.markets[market].params, **changes)
        events = self.send(self.admin, self.d.clearing_house, "set_market_params", market, params.as_tuple())
        self.model.markets[market].params = params
        return events

    def set_loss_policy(self, market: int, policy: int) -> list:
        events = self.send(self.admin, self.d.clearing_house, "set_loss_policy", market, policy)
        self.model.markets[market].loss_policy = policy
        return events

    def settle(self, account: Any, by: Any = None) -> tuple[int, int, list]:
        """settle_funding(account) sent by ``by`` (default: the keeper) and the
        model's touch; returns (chain EQUITY charge, model charge, events)."""
        events = self.send(by or self.keeper, self.d.clearing_house, "settle_funding", addr(account))
        model_charge = self.model.settle_loss(addr(account))
        self.model.touch(addr(account))
        settled = by_name(events, "LossSettled")
        assert len(settled) <= 1
        self.check()
        return (settled[0].charge if settled else 0), model_charge, events

    def liquidate(self, account: Any, market: int, size: int = HUGE, by: Any = None, by_keeper: bool = False,
                  backstop: bool = False) -> Liq:
        """``by`` takes over up to ``size`` (default: the neutral liquidator, or
        the keeper); with ``backstop`` the vault is the taker."""
        sender = by or (self.keeper if by_keeper else self.liquidator)
        events = self.send(sender, self.d.clearing_house, "liquidate", addr(account), market, size, backstop)
        computation = self.computation
        taker = self.d.vault if backstop else addr(sender)
        keeper = bool(self.ch_view("is_keeper", addr(sender)))
        result = self.model.liquidate(addr(account), market, size, taker, keeper=keeper)
        if result.bankruptcy is not None and result.bankruptcy.charges:
            self.equity_socializations += 1
        self.check()
        one = lambda name: (by_name(events, name) or [None])[0]  # noqa: E731
        return Liq(events, one("AccountBankrupt"), one("LossSocialized"), one("ResidualRecorded"), result, computation)

    def deleverage(self, account: Any, market: int, candidates: list[str]) -> tuple[list, Any, Any]:
        """Deleverager.deleverage by the keeper, mirrored in the model; returns
        (events, model result, titanoboa's computation or None)."""
        events = self.send(self.keeper, self.d.deleverager, "deleverage", addr(account), market, list(candidates))
        computation = self.computation
        result = self.model.deleverage(addr(account), market, list(candidates))
        self.check()
        return events, result, computation

    def clawback(self, account: Any, market: int, candidates: list[str] | None = None) -> tuple[list, Any]:
        """ProfitPolicy.clawback by the keeper (PROFIT), mirrored in the model;
        ``candidates`` default to what a keeper passes (``in_profit``).
        Returns (events, the model's Clawback)."""
        if candidates is None:
            candidates = self.in_profit(market, but=account)
        events = self.send(self.keeper, self.d.profit_policy, "clawback", addr(account), market, list(candidates))
        result = self.model.clawback(addr(account), market, list(candidates))
        self.check()
        return events, result

    def in_profit(self, market: int, but: Any) -> list[str]:
        """The accounts in profit in ``market`` but ``but`` (the model's PnL and
        equity both positive), in address order: a keeper's clawback list."""
        m = self.model
        return sorted((a for a in m.accounts() - {addr(but)} if m.position(a, market).size
                       and m.pnl(a, market) > 0 and m.health(a).equity > 0), key=lambda a: int(a, 16))

    def victim(self, index: int, market: int, margin: int, leverage_pct: int, long: bool = True):
        """A fresh account with ``margin`` and a position of ``leverage_pct`` % of it."""
        trader = key(index)
        self.fund(trader.address, margin)
        price = self.model.markets[market].price
        size = margin * leverage_pct // 100 * WAD // price
        self.open(trader, market, size if long else -size)
        return trader

    # ------------------------------------------------------------ checks

    def check(self) -> None:
        """The ledger identity holds to the unit, on chain and in the model. On a
        ``System`` the chain's side is already checked after every transaction
        (``_send`` and the ledger guard: ``System.conservation_errors``)."""
        if self.system is None:
            gap = self.d.ledger_gap()
            assert gap == 0, f"ledger identity broken on chain by {gap}"
        assert self.model.ledger_gap() == 0, "ledger identity broken in the model"

    def check_accounts(self, accounts) -> None:
        """Aggregates equal the sums over every account (the vault's margin account included)."""
        accounts = set(accounts) | {self.d.vault, self.liquidator, self.mm.address}
        total = sum(self.engine.calls([(self.d.clearing_house, "collateral", (a,)) for a in accounts]))
        assert total == self.ch_view("total_collateral"), (total, self.ch_view("total_collateral"))

    def fresh(self, market: int) -> bool:
        return bool(self.view(self.d.oracle, "is_fresh", market))

    @property
    def equity_tolerance(self) -> int:
        """Units an EQUITY-charged amount of one account may be off by."""
        return self.equity_socializations

    @property
    def settled_tolerance(self) -> int:
        """Units the aggregates that settled EQUITY charges move may be off by."""
        return len(self.model.loss_charged) * self.equity_socializations

    @contextlib.contextmanager
    def model_equity_at(self, account: str, equity: int):
        """The model with ``account``'s equity moved to ``equity`` (an integer
        shift of its pending charge): its views then answer at the chain's equity."""
        shift = equity - self.model.health(account).equity
        pending = self.model.loss_pending.get(account)
        self.model.loss_pending[account] = (pending or Fraction(0)) - shift
        try:
            yield self.model
        finally:
            if pending is None:
                del self.model.loss_pending[account]
            else:
                self.model.loss_pending[account] = pending

    def agree(self, *accounts: Any) -> None:
        """Asserts that chain and model agree on every account given and on the
        aggregates, markets and the vault's liquid assets: unit for unit, except
        what EQUITY charges move (see the module docstring)."""
        model, view, lens = self.model, self.ch_view, self.d.lens
        # Views run at the latest block; reverted transactions are mined too on
        # a node, so it may have moved past the last action.
        self.sync()
        tolerance = self.equity_tolerance
        scale = view("scale")
        markets = range(len(model.markets))
        for account in accounts:
            a = addr(account)
            assert abs(view("collateral", a) - model.collateral.get(a, 0)) <= tolerance, f"collateral of {a}"
            assert abs(self.loss_charged(a) - model.loss_charged.get(a, 0)) <= tolerance, f"loss charged to {a}"
            settled = view("loss_snapshot", a) in (0, scale)
            held = sum(1 << m for m in markets if model.position(a, m).size)
            assert view("open_markets", a) == held, f"open markets of {a}"
            for market in markets:
                chain_position = view("positions", a, market)
                p = model.position(a, market)
                assert chain_position[:3] == (p.size, p.open_notional, p.funding_index), f"position of {a} in {market}"
                if not self.equity_socializations:
                    assert chain_position.equity_index == 0, f"EQUITY index of {a} in {market}"
                elif settled and p.size:
                    # Settled to the current scale: snapshot of its side's EQUITY index.
                    assert chain_position.equity_index == view("side_index", market, p.size > 0), (
                        f"EQUITY index of {a} in {market}")
                assert self.view(lens, "pending_funding", a, market) == model.pending_funding(a, market)
            # Stale marks too: the chain values them as the model does (against the holder).
            h = model.health(a)
            health = view("health", a)
            assert (health.maintenance, health.initial) == (h.maintenance, h.initial), f"margin of {a}"
            assert abs(health.equity - h.equity) <= tolerance, f"equity of {a}"
            assert self.view(lens, "equity", a) == health.equity
            stale = [m for m in markets if model.position(a, m).size and not model.fresh(m)]
            if stale:  # liquidate refuses a stale mark: the lens says so
                assert not self.view(lens, "is_liquidatable", a)
                assert all(self.view(lens, "max_liquidation_size", a, m) == 0 for m in markets)
            else:
                # Margin views at the chain's equity equal the model's exactly.
                with self.model_equity_at(a, health.equity) as at_chain:
                    for market in markets:
                        assert self.view(lens, "max_liquidation_size", a, market) == at_chain.max_liquidation(a, market)
                assert self.view(lens, "is_liquidatable", a) == (model.has_position(a) and health.equity < h.maintenance)
        for market, m in enumerate(model.markets):
            state = self.view(lens, "markets", market)
            assert (state.funding_rate, state.long_index, state.short_index, state.last_accrual) == (
                m.funding_rate, m.long_index, m.short_index, m.last_accrual), f"market {market} funding state"
            assert state.long_open_interest == m.long_open_interest
        if not self.equity_socializations:
            assert scale == EQUITY_SCALE
        assert abs(view("total_collateral") - model.total_collateral) <= self.settled_tolerance
        assert abs(view("loss_receivable") - model.loss_receivable) <= self.settled_tolerance
        assert view("total_open_notional") == model.total_open_notional
        assert view("funding_pool") == model.funding_pool
        assert view("protocol_fees") == model.protocol_fees
        assert view("insurance_fees") == model.insurance_fees
        assert view("bad_debt") == model.bad_debt
        assert self.view(self.d.token, "balanceOf", self.d.clearing_house) == model.token_balance
        assert self.view(self.d.vault, "idle_assets") == model.vault_assets
        assert model.ledger_gap() == 0


def assert_liquidated(mirror: Mirror, liq: Liq, account: Any, taker: Any, market: int) -> None:
    """The liquidation emitted exactly one PositionLiquidated, equal to the model's."""
    (event,) = by_name(liq.events, "PositionLiquidated")
    liquidation = liq.model
    assert (event.account, event.liquidator, event.market) == (addr(account), addr(taker), market)
    assert (
        event.size,
        event.price,
        event.penalty,
        event.liquidator_reward,
        event.insurance_reward,
        event.remaining_size,
    ) == (
        liquidation.size,
        liquidation.price,
        liquidation.penalty,
        liquidation.liquidator_reward,
        liquidation.insurance_reward,
        mirror.model.position(addr(account), market).size,
    )


# Private keys of the population accounts (the ith other account); roles use other ranges.
POP_KEY_BASE = 1_000_000


def populate(sim: Mirror, n: int):
    """Adds N "other" accounts to ``sim`` (keys ``key(POP_KEY_BASE + i)``), each
    with random margin and positions opened by signed trades against the
    market maker: both sides, leverage 1x to 80 % of the maximum, every third
    account in both markets (at half the leverage). Seeded: the same N
    accounts every time."""
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


def tx_gas(computation, calldata: bytes) -> int:
    """Whole-transaction gas of a boa call: intrinsic 21_000 + calldata + execution - refund (EIP-3529 cap)."""
    intrinsic = 21_000 + sum(16 if b else 4 for b in calldata)
    used = intrinsic + computation.get_gas_used()
    return used - min(computation.get_gas_refund(), used // 5)
