"""The tests' harness: the contracts and the exact reference model
(``ClearingModel``) driven side by side, every action sent to both.

- ``Mirror``: on ape's chains, through ``System`` (the ``mirror`` fixture).
  The clearing unit tests and the end-to-end story use it, on the embedded
  chain and on anvil.
- ``Sim``: in titanoboa, through the contracts themselves, many times faster.
  The loss-policy tests (tests/policies) and the stateful fuzzing use it.

What follows up to "Usage" is about ``Mirror``.

Every action is sent to the chain first; the model's clock is then moved to the
mined block's timestamp and the same action is applied to the model, so funding
(which accrues per second) sees exactly the same elapsed time on both sides.
``check`` compares accounts and aggregates unit for unit. View calls on the
py-evm provider run at the head block's timestamp, which is the model's clock
after every action and after ``wait``.

Loss policies. OPEN_INTEREST (integer funding-index moves) and ADL (a keeper's
liquidation at the mark: bad debt; the deleverager has its own tests in
tests/policies/test_adl_policy.py) are compared exactly. EQUITY is not: the chain books the rate with 36-digit
fixed point against a conservative sum of equity D, the model with exact
rationals, so the chain charges each account the model's r * e rounded up,
give or take a unit. Wherever an EQUITY charge can reach (an account's
collateral once settled, its equity before), ``check`` allows one unit per
EQUITY socialization; the aggregates it moves (total collateral, the loss
receivable) one unit per settled account.

Usage::

    mirror = Mirror(system, chain)
    mirror.fund(trader, 1_000 * unit)
    mirror.trade(buyer, seller, 0, WAD, 2_000 * unit)
    mirror.wait(600)
    mirror.settle_funding(buyer, sender=keeper)
    mirror.check(buyer, seller)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import boa
from eth_account import Account

from perpclear.deployment import Listing, Roles, deploy_markets
from perpclear.engine import BoaEngine
from perpclear.model import POLICY_EQUITY, WAD, ClearingModel, Liquidation, MarketParams
from perpclear.orders import Order, sign_order
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


class Mirror:
    """One ``System`` on chain and one ``ClearingModel``, kept in lock step."""

    def __init__(self, system: Any, chain: Any):
        self.system = system
        self.chain = chain
        self.ch = system.clearing_house
        self.lens = system.lens
        self.model = ClearingModel(now=chain.blocks.head.timestamp)
        for market, spec in enumerate(system.markets):
            state = self.ch.markets(market)
            self.model.add_market(spec.params, system.oracle.price(market), state.loss_policy)
            m = self.model.markets[market]
            m.last_accrual = state.last_accrual
            m.long_index, m.short_index = state.long_index, state.short_index
            m.funding_rate = state.funding_rate
            m.max_age = system.oracle.max_age(market)
            m.updated_at = system.oracle.last_price(market)[1]
        self.model.token_balance = system.token.balanceOf(self.ch)
        self.model.vault_assets = system.vault.idle_assets()
        # EQUITY socializations so far: each may leave a unit of rounding in
        # every account it charged (see the module docstring).
        self.equity_socializations = 0
        # EQUITY charges settled per account, summed from LossSettled up to block `_charged_to`.
        self.charged: dict[str, int] = {}
        self._charged_to = chain.blocks.height

    # ------------------------------------------------------------ clock

    @property
    def now(self) -> int:
        return self.chain.blocks.head.timestamp

    def loss_charged(self, account: Any) -> int:
        """EQUITY charges settled into ``account`` so far (its LossSettled events)."""
        height = self.chain.blocks.height
        if height > self._charged_to:
            for settled in self.ch.LossSettled.range(self._charged_to + 1, height + 1):
                self.charged[settled.account] = self.charged.get(settled.account, 0) + settled.charge
            self._charged_to = height
        return self.charged.get(addr(account), 0)

    def _sync(self) -> None:
        """Moves the model's clock to the head block (the last mined tx)."""
        self.model.set_time(self.now)

    def wait(self, seconds: int) -> None:
        """Mines an empty block ``seconds`` after the head; views then run at it."""
        self.chain.mine(1, timestamp=self.now + seconds)
        self._sync()

    # ------------------------------------------------------------ actions

    def fund(self, account: Any, amount: int) -> None:
        self.system.fund(account, amount)
        self._sync()
        self.model.deposit(addr(account), amount)

    def fund_vault(self, insurer: Any, amount: int) -> None:
        self.system.fund_vault(insurer, amount)
        self._sync()
        self.model.vault_assets += amount

    def fund_backstop(self, amount: int) -> Any:
        """The vault owner (admin) moves idle vault collateral into its margin account."""
        receipt = self.system.vault.fund_backstop(amount, sender=self.system.admin)
        self._sync()
        self.model.vault_assets -= amount
        self.model.deposit(addr(self.system.vault), amount)
        return receipt

    def withdraw(self, account: Any, amount: int) -> Any:
        receipt = self.ch.withdraw(amount, sender=account)
        self._sync()
        self.model.withdraw(addr(account), amount)
        return receipt

    def trade(self, buyer: Any, seller: Any, market: int, size: int, price: int, maker: str = "buyer") -> Any:
        receipt = self.system.trade(buyer, seller, market, size, price, maker=maker)
        self._sync()
        maker_address = addr(buyer) if maker == "buyer" else addr(seller)
        self.model.trade(addr(buyer), addr(seller), market, size, price, maker_address)
        return receipt

    def set_mark(self, market: int, price: int) -> Any:
        receipt = self.system.set_mark(market, price)
        self._sync()
        self.model.set_price(market, price)
        return receipt

    def set_funding_rate(self, market: int, rate: int) -> Any:
        receipt = self.ch.set_funding_rate(market, rate, sender=self.system.keeper)
        self._sync()
        self.model.set_funding_rate(market, rate)
        return receipt

    def settle_funding(self, account: Any, sender: Any) -> Any:
        receipt = self.ch.settle_funding(account, sender=sender)
        self._sync()
        self.model.touch(addr(account))
        return receipt

    def set_market_params(self, market: int, **changes: Any) -> Any:
        params = dataclasses.replace(self.model.markets[market].params, **changes)
        receipt = self.ch.set_market_params(market, params.as_tuple(), sender=self.system.admin)
        self._sync()
        self.model.markets[market].params = params
        return receipt

    def set_loss_policy(self, market: int, policy: int) -> Any:
        receipt = self.ch.set_loss_policy(market, policy, sender=self.system.admin)
        self._sync()
        self.model.markets[market].loss_policy = policy
        return receipt

    def liquidate(
        self, account: Any, market: int, max_size: int, sender: Any, backstop: bool = False
    ) -> tuple[Any, Liquidation]:
        """Liquidates on chain and in the model (the vault is the taker of a backstop)."""
        receipt = self.ch.liquidate(account, market, max_size, backstop, sender=sender)
        self._sync()
        taker = addr(self.system.vault) if backstop else addr(sender)
        keeper = bool(self.ch.is_keeper(sender))
        liquidation = self.model.liquidate(addr(account), market, max_size, taker, keeper=keeper)
        if liquidation.bankruptcy is not None and liquidation.bankruptcy.charges:
            self.equity_socializations += 1
        return receipt, liquidation

    # ------------------------------------------------------------ checks

    def fresh(self, market: int) -> bool:
        return bool(self.system.oracle.is_fresh(market))

    @property
    def equity_tolerance(self) -> int:
        """Units an EQUITY-charged amount of one account may be off by."""
        return self.equity_socializations

    @property
    def settled_tolerance(self) -> int:
        """Units the aggregates that settled EQUITY charges move may be off by."""
        return len(self.model.loss_charged) * self.equity_socializations

    @contextmanager
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

    def check(self, *accounts: Any) -> None:
        """Asserts that chain and model agree on every account given and on the
        aggregates, markets and the vault's liquid assets: unit for unit, except
        what EQUITY charges move (see the module docstring)."""
        ch, model = self.ch, self.model
        # Views run at the head block; reverted transactions are mined too, so
        # the head may have moved past the last action.
        self._sync()
        tolerance = self.equity_tolerance
        scale = ch.scale()
        for account in accounts:
            a = addr(account)
            collateral = ch.collateral(a)
            assert abs(collateral - model.collateral.get(a, 0)) <= tolerance, f"collateral of {a}"
            assert abs(self.loss_charged(a) - model.loss_charged.get(a, 0)) <= tolerance, f"loss charged to {a}"
            settled = ch.loss_snapshot(a) in (0, scale)
            held = sum(1 << m for m in range(len(model.markets)) if model.position(a, m).size)
            assert ch.open_markets(a) == held, f"open markets of {a}"
            for market in range(len(model.markets)):
                chain_position = ch.positions(a, market)
                p = model.position(a, market)
                assert (
                    chain_position.size,
                    chain_position.open_notional,
                    chain_position.funding_index,
                ) == (p.size, p.open_notional, p.funding_index), f"position of {a} in {market}"
                if not self.equity_socializations:
                    assert chain_position.equity_index == 0, f"EQUITY index of {a} in {market}"
                elif settled and p.size:
                    # Settled to the current scale: snapshot of its side's EQUITY index.
                    assert chain_position.equity_index == ch.side_index(market, p.size > 0), (
                        f"EQUITY index of {a} in {market}"
                    )
                assert self.lens.pending_funding(a, market) == model.pending_funding(a, market)
            # Stale marks too: the chain values them as the model does (against the holder).
            h = model.health(a)
            health = ch.health(a)
            assert (health.maintenance, health.initial) == (h.maintenance, h.initial), f"margin of {a}"
            assert abs(health.equity - h.equity) <= tolerance, f"equity of {a}"
            assert ch.equity(a) == health.equity
            stale = [m for m in range(len(model.markets)) if model.position(a, m).size and not model.fresh(m)]
            if stale:  # liquidate refuses a stale mark: the lens says so
                assert not self.lens.is_liquidatable(a)
                assert all(self.lens.max_liquidation_size(a, m) == 0 for m in range(len(model.markets)))
            else:
                # Margin views at the chain's equity equal the model's exactly.
                with self.model_equity_at(a, health.equity) as at_chain:
                    for market in range(len(model.markets)):
                        assert self.lens.max_liquidation_size(a, market) == at_chain.max_liquidation(a, market)
                assert self.lens.is_liquidatable(a) == (model.has_position(a) and health.equity < h.maintenance)
        for market, m in enumerate(model.markets):
            state = ch.markets(market)
            assert (state.funding_rate, state.long_index, state.short_index, state.last_accrual) == (
                m.funding_rate,
                m.long_index,
                m.short_index,
                m.last_accrual,
            ), f"market {market} funding state"
            assert state.long_open_interest == m.long_open_interest
        if not self.equity_socializations:
            assert scale == EQUITY_SCALE
        assert abs(ch.total_collateral() - model.total_collateral) <= self.settled_tolerance
        assert abs(ch.loss_receivable() - model.loss_receivable) <= self.settled_tolerance
        assert ch.total_open_notional() == model.total_open_notional
        assert ch.funding_pool() == model.funding_pool
        assert ch.protocol_fees() == model.protocol_fees
        assert ch.insurance_fees() == model.insurance_fees
        assert ch.bad_debt() == model.bad_debt
        assert self.system.token.balanceOf(ch) == model.token_balance
        assert self.system.vault.idle_assets() == model.vault_assets
        assert model.ledger_gap() == 0


def assert_liquidated(mirror: Mirror, receipt: Any, liquidation: Liquidation, account: Any, taker: Any, market: int) -> None:
    """The receipt holds exactly one PositionLiquidated, equal to the model's."""
    (event,) = mirror.ch.PositionLiquidated.from_receipt(receipt)
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


# ---------------------------------------------------------------- titanoboa

HUGE = 10**30  # "everything" as a liquidation size
ETH, SOL = 0, 1
MARKETS = (
    (2_000, MarketParams()),  # imr 10 %, mmr 5 %, penalty 2.5 %
    (30, MarketParams(imr_bps=2_000, mmr_bps=1_000, penalty_bps=500)),
)
EXPIRY = 2**40
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


def by_name(logs, name):
    return [log for log in logs if type(log).__name__ == name or getattr(log, "event_type", None) and log.event_type.name == name]


class Sim:
    """The whole system in titanoboa (its own ``boa.Env``, deployed by
    perpclear.deployment) and the exact model beside it. Every state-changing
    call made through it is mirrored in the model and followed by the ledger
    identity, to the unit (``check=False``: checked later, for bulk set-ups).
    The loss-policy tests and the stateful fuzzing use it."""

    def __init__(self, decimals: int, policies=(POLICY_EQUITY, POLICY_EQUITY), vault_assets: int = 0,
                 liquidator_margin: int = 10**9, mm_margin: int = 10**7, extra_markets: tuple = (),
                 markets: tuple = MARKETS):
        """``markets``: (whole price, MarketParams) of each market, with ``policies``;
        ``extra_markets``: more of them, EQUITY, listed after."""
        self.charged: dict[str, int] = {}  # EQUITY charges settled per account, from LossSettled
        markets = tuple(markets) + tuple(extra_markets)
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
        for settled in by_name(logs, "LossSettled"):
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
        return self._margin(account, "deposit", amount, check)

    def withdraw(self, account: str, amount: int, check: bool = True):
        return self._margin(account, "withdraw", amount, check)

    def _margin(self, account: str, action: str, amount: int, check: bool):
        """``account`` deposits or withdraws ``amount``, on chain and in the model."""
        with boa.env.prank(account):
            getattr(self.ch, action)(amount)
        logs = self._logs(self.ch)
        self.sync()
        getattr(self.model, action)(account, amount)
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

    def set_funding_rate(self, market: int, rate: int):
        with boa.env.prank(self.keeper):
            self.ch.set_funding_rate(market, rate)
        self.sync()
        self.model.set_funding_rate(market, rate)

    def wait(self, seconds: int):
        """``seconds`` pass; the keeper then pushes every mark again (unchanged)."""
        boa.env.time_travel(seconds=seconds)
        self.sync()
        prices = [m.price for m in self.model.markets]
        with boa.env.prank(self.keeper):
            self.oracle.set_prices(list(range(len(prices))), prices)
        for market, price in enumerate(prices):
            self.model.set_price(market, price)

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
        one = lambda name: (by_name(logs, name) or [None])[0]  # noqa: E731
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
        settled = by_name(logs, "LossSettled")
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


def tx_gas(computation, calldata: bytes) -> int:
    """Whole-transaction gas of a boa call: intrinsic 21_000 + calldata + execution - refund (EIP-3529 cap)."""
    intrinsic = 21_000 + sum(16 if b else 4 for b in calldata)
    used = intrinsic + computation.get_gas_used()
    return used - min(computation.get_gas_refund(), used // 5)
