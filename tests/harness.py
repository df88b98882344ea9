"""The tests' harness on ape's chains: a mirror that drives the chain (through
``System``) and the exact reference model (``ClearingModel``) side by side.
The clearing unit tests and the end-to-end story use it (the ``mirror``
fixture), on the embedded chain and on anvil.

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

import dataclasses
from typing import Any

from contextlib import contextmanager
from fractions import Fraction

from perpclear.model import ClearingModel, Liquidation
from perpclear.units import EQUITY_SCALE


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
