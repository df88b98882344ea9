"""The exact reference model of the clearing house.

Every quantity is first computed as an exact rational (``fractions.Fraction``)
and then rounded in the one direction the contracts document: against the
account, in favour of the system. The model imports nothing from the chain, so
tests, the cascade runner and the auditor can all replay a history through it
and compare it with the contracts unit for unit.

Units (the same as the contracts):
    collateral   token's smallest unit (6 or 18 decimals)
    size         signed base amount, 18 decimals (WAD = one contract)
    price        collateral units per whole contract
    ratios       basis points, 10_000 = 100 %
    funding rate WAD fraction of the mark per second (> 0: longs pay)
    funding idx  collateral units * WAD per contract
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from perpclear.units import (
    BPS,
    FEE_BOUND,
    FUNDING_SCALE,
    MAX_INDEX,
    MAX_RATE,
    POLICY_ADL,
    POLICY_EQUITY,
    POLICY_OPEN_INTEREST,
    POLICY_PROFIT,
    WAD,
)


def floor(x: Fraction | int) -> int:
    """Largest integer <= x."""
    return math.floor(Fraction(x))


def ceil(x: Fraction | int) -> int:
    """Smallest integer >= x."""
    return math.ceil(Fraction(x))


class ModelError(Exception):
    """An operation the contracts would refuse; the text is their revert reason."""


@dataclass(frozen=True)
class MarketParams:
    """Risk and fee parameters of one market, as ``ClearingHouse.MarketParams``."""

    imr_bps: int = 1_000
    mmr_bps: int = 500
    penalty_bps: int = 250
    liquidator_share_bps: int = 5_000
    maker_fee_bps: int = 2
    taker_fee_bps: int = 5
    fee_insurance_share_bps: int = 5_000
    oi_cap: int = 10**30
    max_funding_rate: int = 10**14
    max_insurance_draw: int = 0

    def as_tuple(self) -> tuple:
        """The struct as the contract ABI takes it."""
        return (
            self.imr_bps,
            self.mmr_bps,
            self.penalty_bps,
            self.liquidator_share_bps,
            self.maker_fee_bps,
            self.taker_fee_bps,
            self.fee_insurance_share_bps,
            self.oi_cap,
            self.max_funding_rate,
            self.max_insurance_draw,
        )


@dataclass
class Market:
    params: MarketParams
    price: int
    loss_policy: int = 1
    funding_rate: int = 0
    long_index: int = 0  # funding per side; OPEN_INTEREST moves one side only
    short_index: int = 0
    last_accrual: int = 0
    long_open_interest: int = 0
    max_age: int = 10**18  # the oracle's staleness limit (seconds)
    updated_at: int = 0  # when the mark was last pushed

    def index(self, long: bool) -> int:
        return self.long_index if long else self.short_index


@dataclass
class Position:
    size: int = 0
    open_notional: int = 0
    funding_index: int = 0  # its side's index when last settled


@dataclass(frozen=True)
class Health:
    equity: int
    maintenance: int
    initial: int


@dataclass(frozen=True)
class Liquidation:
    size: int  # signed size taken over by the liquidator
    price: int
    penalty: int
    liquidator_reward: int
    insurance_reward: int
    bankruptcy: Bankruptcy | None


@dataclass(frozen=True)
class Residual:
    """What a loss policy's ``place`` is asked (interfaces/ILossPolicy.vyi)."""

    account: str
    market: int
    amount: int  # R
    was_long: bool
    mark: int  # 0 when the waterfall runs after ADL fills
    open_interest: int  # before the liquidation fill


# How each policy id places a residual: (by_side, by_equity), what its
# contract's ``place`` answers. ADL and PROFIT place theirs before the
# take-over and answer (0, 0). A fifth policy's contract needs its rule here
# for the model and the audit (docs/loss-policies.md, "Adding a policy").
PLACEMENTS = {
    POLICY_EQUITY: lambda r: (0, r.amount),
    POLICY_OPEN_INTEREST: lambda r: (r.amount, 0),
    POLICY_ADL: lambda r: (0, 0),
    POLICY_PROFIT: lambda r: (0, 0),
}


@dataclass(frozen=True)
class Socialization:
    """One charge of a placement, as its ``LossSocialized`` event: by equity
    (``loss_policy`` EQUITY) or on the opposite side (OPEN_INTEREST)."""

    loss_policy: int
    amount: int  # what the placement asked of this charge
    booked: int  # what it placed; amount - booked is bad debt
    basis: Fraction  # EQUITY: D; OPEN_INTEREST: open interest
    rate: Fraction  # EQUITY: r; OPEN_INTEREST: loss per contract (index units)
    charges: dict = field(default_factory=dict)  # EQUITY: account -> exact charge r * e


@dataclass(frozen=True)
class Bankruptcy:
    account: str
    market: int
    deficit: int
    insurance_paid: int
    residual: int
    parts: tuple = ()  # the Socializations booked, in the clearing house's order (side, then equity)

    @property
    def booked(self) -> int:
        """Placed by the loss policy; residual - booked is bad debt."""
        return sum(p.booked for p in self.parts)

    def _part(self, loss_policy: int) -> Socialization | None:
        return next((p for p in self.parts if p.loss_policy == loss_policy), None)

    @property
    def charges(self) -> dict:
        """The equity charge's exact charges r * e per account (empty: none)."""
        part = self._part(POLICY_EQUITY)
        return part.charges if part else {}

    @property
    def basis(self) -> Fraction:
        """D of the equity charge, else the open interest of the side charge."""
        part = self._part(POLICY_EQUITY) or self._part(POLICY_OPEN_INTEREST)
        return part.basis if part else Fraction(0)

    @property
    def rate(self) -> Fraction:
        """r of the equity charge, else the side charge's loss per contract."""
        part = self._part(POLICY_EQUITY) or self._part(POLICY_OPEN_INTEREST)
        return part.rate if part else Fraction(0)


@dataclass(frozen=True)
class Deleverage:
    """One ``Deleverager.deleverage`` call: its bankruptcy price and fills."""

    account: str
    market: int
    equity: int  # of the bankrupt account, before
    insurance: int  # I: what the vault could still cover
    residual: int  # R = -equity - I
    price: int  # the bankruptcy price
    mark: int
    fills: list  # (counterparty, size, rank), in order
    skipped: list  # (counterparty, reason), reasons as ADL_SKIP
    remaining: int  # base amount left open
    bankruptcy: Bankruptcy | None  # the waterfall, when the position closed

    def charges(self) -> dict[str, Fraction]:
        """What each counterparty paid beyond closing at the mark, exactly."""
        gap = abs(self.price - self.mark)
        return {c: Fraction(size * gap, WAD) for c, size, _ in self.fills}


@dataclass(frozen=True)
class Clawback:
    """One ``ProfitPolicy.clawback`` call (PROFIT): who was charged what."""

    account: str
    market: int
    equity: int  # of the bankrupt account, before
    insurance: int  # I
    residual: int  # R = -equity - I
    profits: dict  # payer -> profit counted, min(pnl, equity), in the candidates' order
    skipped: list  # (candidate, reason), reasons as ADL_SKIP
    charged: dict  # payer -> units moved to the bankrupt account
    mark: int

    @property
    def total_profit(self) -> int:
        return sum(self.profits.values())

    def exact(self) -> dict[str, Fraction]:
        """Each payer's exact share: R * profit / P, at most its whole profit."""
        total = self.total_profit
        if total <= self.residual:
            return {c: Fraction(p) for c, p in self.profits.items()}
        return {c: Fraction(self.residual * p, total) for c, p in self.profits.items()}


@dataclass
class ClearingModel:
    """State machine of one clearing house and its insurance vault's assets."""

    markets: list[Market] = field(default_factory=list)
    collateral: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    funding_pool: int = 0
    protocol_fees: int = 0
    insurance_fees: int = 0
    bad_debt: int = 0
    loss_receivable: int = 0
    loss_pending: dict[str, Fraction] = field(default_factory=dict)  # EQUITY, exact, unsettled
    loss_charged: dict[str, int] = field(default_factory=dict)
    loss_withheld: dict[str, int] = field(default_factory=dict)  # negative shares, to insurance
    equity_scale: Fraction = Fraction(1)  # K, exact
    vault_assets: int = 0  # liquid collateral held by the insurance vault
    token_balance: int = 0  # collateral tokens held by the clearing house
    now: int = 0
    # An integer P: after each EQUITY socialization the pending charges and K
    # are rounded to the nearest multiple of 1/P; at the default 10**60 that
    # is 60 orders of magnitude below one token unit, and the rationals stay
    # a few hundred bits. None: fully exact, for short runs only: D includes
    # the pending charges, so exact rationals double in size with every
    # socialization (a few dozen make the model crawl).
    precision: int | None = 10**60
    # Each policy id's placement (PLACEMENTS); a test may add a fifth.
    placements: dict = field(default_factory=lambda: dict(PLACEMENTS))

    # ------------------------------------------------------------ set-up

    def add_market(self, params: MarketParams, price: int, loss_policy: int = 1, max_age: int = 10**18) -> int:
        self.markets.append(Market(params, price, loss_policy, last_accrual=self.now, max_age=max_age, updated_at=self.now))
        return len(self.markets) - 1

    def set_time(self, timestamp: int) -> None:
        if timestamp < self.now:
            raise ValueError("model: time goes forward")
        self.now = timestamp

    def set_price(self, market: int, price: int) -> None:
        self.markets[market].price = price
        self.markets[market].updated_at = self.now

    def fresh(self, market: int) -> bool:
        m = self.markets[market]
        return self.now - m.updated_at <= m.max_age

    def valuation_mark(self, market: int, size: int) -> int:
        """The mark a position is valued at: with a stale mark, the last one
        moved against the holder by the initial margin rate (modules/valuation.vy)."""
        m = self.markets[market]
        if self.fresh(market):
            return m.price
        if size > 0:
            return floor(Fraction(m.price * (BPS - m.params.imr_bps), BPS))
        return ceil(Fraction(m.price * (BPS + m.params.imr_bps), BPS))

    def position(self, account: str, market: int) -> Position:
        return self.positions.setdefault((account, market), Position())

    # ------------------------------------------------------------ ledger

    def _credit(self, account: str, amount: int) -> None:
        self.collateral[account] = self.collateral.get(account, 0) + amount

    @property
    def total_collateral(self) -> int:
        return sum(self.collateral.values())

    @property
    def total_open_notional(self) -> int:
        return sum(p.open_notional for p in self.positions.values())

    def ledger_gap(self) -> int:
        """Zero when the ledger identity of the contract docstring holds."""
        return (
            self.token_balance
            + self.bad_debt
            + self.loss_receivable
            - self.total_collateral
            + self.total_open_notional
            - self.funding_pool
            - self.protocol_fees
            - self.insurance_fees
        )

    # ------------------------------------------------------------ funding

    def index_now(self, market: int, long: bool) -> int:
        """The side's index with funding accrued to now; over a stale interval
        nothing accrues until the next fresh mark."""
        m = self.markets[market]
        if not self.fresh(market):
            return m.index(long)
        return m.index(long) + m.funding_rate * m.price * (self.now - m.last_accrual)

    def accrue(self, market: int) -> bool:
        """Funding to now; False (nothing moves) when a rate is set and the mark is stale."""
        m = self.markets[market]
        if self.now > m.last_accrual:
            if m.funding_rate and not self.fresh(market):
                return False
            delta = m.funding_rate * m.price * (self.now - m.last_accrual)
            m.long_index += delta
            m.short_index += delta
            m.last_accrual = self.now
        return True

    def pending_funding(self, account: str, market: int) -> int:
        p = self.position(account, market)
        return ceil(Fraction(p.size * (self.index_now(market, p.size > 0) - p.funding_index), FUNDING_SCALE))

    def settle_funding(self, account: str, market: int) -> int:
        p = self.position(account, market)
        if p.size == 0:
            return 0
        index = self.markets[market].index(p.size > 0)
        owed = ceil(Fraction(p.size * (index - p.funding_index), FUNDING_SCALE))
        p.funding_index = index
        self._credit(account, -owed)
        self.funding_pool += owed
        return owed

    def set_funding_rate(self, market: int, rate: int) -> None:
        if abs(rate) > self.markets[market].params.max_funding_rate:
            raise ModelError("clearing: funding rate too high")
        if not self.accrue(market):
            raise ModelError("oracle: stale price")
        self.markets[market].funding_rate = rate

    def touch(self, account: str) -> None:
        self.settle_loss(account)
        for market in range(len(self.markets)):
            if self.position(account, market).size != 0:
                self.accrue(market)
                self.settle_funding(account, market)

    # ------------------------------------------------------------ margin

    def _settled(self, account: str) -> int:
        """Collateral after the pending EQUITY shares, floored, negative shares included."""
        return floor(self.collateral.get(account, 0) - self.loss_pending.get(account, 0))

    def collateral_now(self, account: str) -> int:
        """Collateral after pending EQUITY charges (the contract's view): a negative
        share is withheld, so this never exceeds the stored collateral."""
        return min(self._settled(account), self.collateral.get(account, 0))

    def settle_loss(self, account: str) -> int:
        """Books the pending EQUITY charges of ``account``; returns the charge (>= 0).
        A negative net share (an account whose equity was negative) is not paid
        out: it goes to the insurance fees (``loss_withheld`` keeps the total)."""
        if not self.loss_pending.get(account):
            self.loss_pending.pop(account, None)
            return 0
        share = self.collateral.get(account, 0) - self._settled(account)
        self.loss_receivable -= share
        del self.loss_pending[account]
        if share < 0:
            self._add_fees(0, -share)
            self.loss_withheld[account] = self.loss_withheld.get(account, 0) - share
            return 0
        self.collateral[account] -= share
        self.loss_charged[account] = self.loss_charged.get(account, 0) + share
        return share

    def exact_equity(self, account: str) -> Fraction:
        """Equity as a rational: no rounding anywhere (the EQUITY policy's basis)."""
        equity = Fraction(self.collateral.get(account, 0)) - self.loss_pending.get(account, 0)
        for market, m in enumerate(self.markets):
            p = self.position(account, market)
            if p.size:
                equity += Fraction(p.size * m.price, WAD) - p.open_notional
                equity -= Fraction(p.size * (self.index_now(market, p.size > 0) - p.funding_index), FUNDING_SCALE)
        return equity

    def health(self, account: str, strict: bool = False) -> Health:
        """Equity and margins; a stale mark raises when ``strict`` (liquidations)."""
        equity = self.collateral_now(account)
        maintenance = initial = 0
        for market, m in enumerate(self.markets):
            p = self.position(account, market)
            if p.size == 0:
                continue
            if strict and not self.fresh(market):
                raise ModelError("oracle: stale price")
            price = self.valuation_mark(market, p.size)
            value = floor(Fraction(p.size * price, WAD))
            equity += value - p.open_notional - self.pending_funding(account, market)
            exposure = abs(p.size) * price
            maintenance += ceil(Fraction(exposure * m.params.mmr_bps, WAD * BPS))
            initial += ceil(Fraction(exposure * m.params.imr_bps, WAD * BPS))
        return Health(equity, maintenance, initial)

    def has_position(self, account: str) -> bool:
        return any(self.position(account, m).size != 0 for m in range(len(self.markets)))

    def deposit(self, account: str, amount: int) -> None:
        if amount <= 0:
            raise ModelError("clearing: zero amount")
        self.settle_loss(account)
        self._credit(account, amount)
        self.token_balance += amount

    def withdraw(self, account: str, amount: int) -> None:
        if amount <= 0:
            raise ModelError("clearing: zero amount")
        self.touch(account)
        if self.collateral.get(account, 0) < amount:
            raise ModelError("clearing: amount exceeds collateral")
        self._credit(account, -amount)
        h = self.health(account)
        if h.equity < h.initial:
            self._credit(account, amount)
            raise ModelError("clearing: below initial margin")
        self.token_balance -= amount

    # ------------------------------------------------------------ trading

    def apply_fill(self, account: str, market: int, delta: int, price: int, round_up: bool = False) -> int:
        """Position change at ``price``; returns realised PnL (see the contract).
        The notional is floored, or rounded up when ``round_up`` (ADL fills)."""
        p = self.position(account, market)
        old, new = p.size, p.size + delta
        rounding = ceil if round_up else floor
        notional = rounding(Fraction(abs(delta) * price, WAD)) * (1 if delta > 0 else -1)
        realized = 0
        if old == 0 or (old > 0) == (delta > 0):
            p.open_notional += notional
        elif abs(delta) <= abs(old):
            released = p.open_notional
            if abs(delta) < abs(old):
                released = ceil(Fraction(p.open_notional * abs(delta), abs(old)))
            realized = -notional - released
            p.open_notional -= released
        else:
            opened = floor(Fraction(abs(new) * price, WAD)) * (1 if new > 0 else -1)
            realized = -(notional - opened) - p.open_notional
            p.open_notional = opened
        p.size = new
        p.funding_index = self.markets[market].index(new > 0)
        self._credit(account, realized)
        m = self.markets[market]
        m.long_open_interest += max(new, 0) - max(old, 0)
        return realized

    def trade(self, buyer: str, seller: str, market: int, size: int, price: int, maker: str) -> tuple[int, int]:
        """One settled fill; returns (buyer fee, seller fee).

        Margin rules of the contract: a side whose position grows or flips
        must end at or above initial margin; a pure reduction must end with
        non-negative equity; a fill that raises long open interest must stay within the cap.
        """
        self.accrue(market)
        fresh = self.fresh(market)
        open_interest = self.markets[market].long_open_interest
        fees = []
        for account, delta in ((buyer, size), (seller, -size)):
            self.settle_loss(account)
            self.settle_funding(account, market)
            old = self.position(account, market).size
            reduces = old != 0 and (old > 0) != (delta > 0) and abs(delta) <= abs(old)
            if not (fresh or reduces):
                raise ModelError("clearing: stale mark, reduce only")
            self.apply_fill(account, market, delta, price)
            params = self.markets[market].params
            bps = params.maker_fee_bps if account == maker else params.taker_fee_bps
            fee = ceil(Fraction(floor(Fraction(size * price, WAD)) * bps, BPS))
            self._credit(account, -fee)
            to_insurance = fee * params.fee_insurance_share_bps // BPS
            self._add_fees(fee - to_insurance, to_insurance)
            fees.append(fee)
            h = self.health(account)
            if reduces and h.equity < 0:
                raise ModelError("clearing: negative equity")
            if not reduces and h.equity < h.initial:
                raise ModelError("clearing: below initial margin")
        m = self.markets[market]
        if m.long_open_interest > open_interest and m.long_open_interest > m.params.oi_cap:
            raise ModelError("clearing: open interest cap")
        return fees[0], fees[1]

    def _add_fees(self, protocol: int, insurance: int) -> None:
        """Fees owed to each recipient stay below 2**128 units (the clearing
        house keeps both in one word) until swept."""
        if self.protocol_fees + protocol >= FEE_BOUND or self.insurance_fees + insurance >= FEE_BOUND:
            raise ModelError("clearing: fees overflow, sweep them")
        self.protocol_fees += protocol
        self.insurance_fees += insurance

    def sweep_fees(self) -> None:
        self.vault_assets += self.insurance_fees
        self.token_balance -= self.protocol_fees + self.insurance_fees
        self.protocol_fees = self.insurance_fees = 0

    # ------------------------------------------------------------ liquidation

    def max_liquidation(self, account: str, market: int) -> int:
        h = self.health(account)
        size = self.position(account, market).size
        if size == 0 or h.equity >= h.maintenance:
            return 0
        if h.equity <= 0:
            return abs(size)
        target = (h.maintenance + h.initial + 1) // 2
        if h.equity >= target:
            return 0
        params = self.markets[market].params
        ratio = (params.mmr_bps + params.imr_bps) // 2 - params.penalty_bps
        notional = ceil(Fraction((target - h.equity) * BPS, ratio))
        return min(abs(size), ceil(Fraction(notional * WAD, self.markets[market].price)))

    def liquidate(self, account: str, market: int, max_size: int, liquidator: str, keeper: bool = False) -> Liquidation:
        self.touch(account)
        self.accrue(market)
        self.settle_loss(liquidator)
        self.settle_funding(liquidator, market)
        size = self.position(account, market).size
        if size == 0:
            raise ModelError("clearing: no position")
        h = self.health(account, strict=True)
        if h.equity >= h.maintenance:
            raise ModelError("clearing: not liquidatable")
        if h.equity < 0 and self.markets[market].loss_policy in (POLICY_ADL, POLICY_PROFIT) and not keeper:
            raise ModelError("clearing: bankrupt, keepers only")
        amount = min(max_size, self.max_liquidation(account, market))
        # A taker on the opposite side takes a bankrupt position whole and
        # pays for what it closes of its own (see socialize_open_interest).
        taker_size = self.position(liquidator, market).size
        closing = 0
        if taker_size and (taker_size > 0) != (size > 0):
            closing = min(amount, abs(taker_size))
            if h.equity <= 0 and amount != abs(size):
                raise ModelError("clearing: bankrupt, take it whole")
        open_interest = self.markets[market].long_open_interest
        mark = self.markets[market].price
        delta = -amount if size > 0 else amount
        self.apply_fill(account, market, delta, mark)
        self.apply_fill(liquidator, market, -delta, mark)
        params = self.markets[market].params
        notional = floor(Fraction(amount * mark, WAD))
        penalty = min(ceil(Fraction(notional * params.penalty_bps, BPS)), max(h.equity, 0))
        reward = penalty * params.liquidator_share_bps // BPS
        self._credit(account, -penalty)
        self._credit(liquidator, reward)
        self.token_balance -= penalty - reward
        self.vault_assets += penalty - reward
        bankruptcy = None
        if self.collateral[account] < 0 and not self.has_position(account):
            bankruptcy = self.run_waterfall(account, market, size > 0, mark, open_interest, liquidator, closing)
        return Liquidation(-delta, mark, penalty, reward, penalty - reward, bankruptcy)

    # ------------------------------------------------------------ ADL

    def adl_rank(self, account: str, market: int) -> int:
        """Deleverager.rank: PnL% x leverage in WAD, rounded as the contract."""
        return self._adl_rank(account, market)[0] if self.position(account, market).size else 0

    def _adl_rank(self, account: str, market: int) -> tuple[int, int]:
        p = self.position(account, market)
        equity = self.health(account).equity
        value = floor(Fraction(p.size * self.markets[market].price, WAD))
        pnl = self.pnl(account, market)
        if pnl <= 0 or equity <= 0:
            return 0, equity
        pnl_pct = pnl * WAD // max(abs(p.open_notional), 1)
        return max(pnl_pct * abs(value) // equity, 1), equity

    def _bankrupt(self, account: str, market: int, policy: int) -> tuple[int, int, int, int]:
        """keeper_fed._bankrupt (ADL and PROFIT): (size, equity e < 0, insurance I, residual R = -e - I > 0)."""
        m = self.markets[market]
        if m.loss_policy != policy:
            raise ModelError("adl: wrong loss policy")
        size = self.position(account, market).size
        if size == 0:
            raise ModelError("adl: no position")
        if any(self.position(account, o).size for o in range(len(self.markets)) if o != market):
            raise ModelError("adl: other positions first")
        equity = self.health(account).equity
        if equity >= 0:
            raise ModelError("adl: not bankrupt")
        cap = m.params.max_insurance_draw
        insurance = min(self.vault_assets, cap) if cap else self.vault_assets
        if -equity <= insurance:
            raise ModelError("adl: insurance covers, liquidate")
        return size, equity, insurance, -equity - insurance

    def deleverage(self, account: str, market: int, candidates: list[str]) -> Deleverage:
        """Deleverager.deleverage: the bankruptcy price, then each candidate in order."""
        size, equity, insurance, residual = self._bankrupt(account, market, POLICY_ADL)
        if not candidates:
            raise ModelError("adl: no candidates")
        m = self.markets[market]
        mark, remaining = m.price, abs(size)
        gap = ceil(Fraction(residual * WAD, remaining))
        price = mark + gap
        if size < 0:
            gap = min(gap, mark - 1)
            price = mark - gap
        fills, skipped, bankruptcy, last = [], [], None, None
        for c in candidates:
            reason, amount, rank = self.adl_candidate(account, c, market, remaining, gap, last)
            if reason:
                skipped.append((c, reason))
            else:
                bankruptcy = self.adl_fill(account, c, market, amount, price)
                fills.append((c, amount, rank))
                last, remaining = rank, remaining - amount
            if remaining == 0:
                break
        return Deleverage(account, market, equity, insurance, residual, price, mark, fills, skipped, remaining, bankruptcy)

    def pnl(self, account: str, market: int) -> int:
        """Unrealised PnL at the mark, pending funding included, rounded as the contracts."""
        p = self.position(account, market)
        value = floor(Fraction(p.size * self.markets[market].price, WAD))
        return value - p.open_notional - self.pending_funding(account, market)

    def clawback(self, account: str, market: int, candidates: list[str]) -> Clawback:
        """ProfitPolicy.clawback: the residual charged to the candidates in profit, pro rata."""
        _, equity, insurance, residual = self._bankrupt(account, market, POLICY_PROFIT)
        if not candidates:
            raise ModelError("adl: no candidates")
        payers, skipped, previous = {}, [], None
        for c in candidates:
            if previous is not None and int(c, 16) <= int(previous, 16):
                skipped.append((c, 5))
            elif c == account or self.position(c, market).size == 0:
                skipped.append((c, 1))
            else:
                previous = c
                profit = min(self.pnl(c, market), self.health(c).equity)
                if profit > 0:
                    payers[c] = profit
                else:
                    skipped.append((c, 2))
        total, running, charged, charges = sum(payers.values()), 0, 0, {}
        for c, profit in payers.items():
            amount = profit
            if total > residual:
                running += profit
                amount = residual * running // total - charged
            if amount:
                self.profit_charge(account, c, market, amount)
            charges[c] = amount
            charged += amount
        return Clawback(account, market, equity, insurance, residual, payers, skipped, charges, self.markets[market].price)

    def profit_charge(self, bankrupt: str, payer: str, market: int, amount: int) -> None:
        """ClearingHouse.adl_fill in a PROFIT market: ``amount`` of ``payer``'s profit in
        ``market`` goes to ``bankrupt``'s collateral; the payer's cost basis rises by it."""
        self.touch(bankrupt)
        self.touch(payer)
        self.position(payer, market).open_notional += amount
        self._credit(bankrupt, amount)

    def adl_candidate(self, bankrupt: str, c: str, market: int, remaining: int, gap: int, last: int | None) -> tuple[int, int, int]:
        """Deleverager's check of one candidate: (skip reason or 0, amount to close, rank)."""
        p = self.position(c, market)
        if c == bankrupt or p.size == 0 or (p.size > 0) == (self.position(bankrupt, market).size > 0):
            return 1, 0, 0
        rank, room = self._adl_rank(c, market)
        amount = min(remaining, abs(p.size))
        if rank == 0:
            return 2, amount, rank
        if last is not None and rank > last:
            return 3, amount, rank
        if room < ceil(Fraction(amount * gap, WAD)) + 2:
            return 4, amount, rank
        return 0, amount, rank

    def adl_fill(self, bankrupt: str, account: str, market: int, amount: int, price: int) -> Bankruptcy | None:
        """ClearingHouse.adl_fill: ``account`` closes ``amount`` against the bankrupt position at ``price``."""
        self.touch(bankrupt)
        self.touch(account)
        was_long = self.position(bankrupt, market).size > 0
        delta = -amount if was_long else amount
        self.apply_fill(bankrupt, market, delta, price, round_up=was_long)
        self.apply_fill(account, market, -delta, price, round_up=was_long)
        if self.health(account).equity < 0:
            raise ModelError("clearing: negative equity")
        left = self.collateral.get(bankrupt, 0)
        if self.has_position(bankrupt) or left == 0:
            return None
        if left < 0:
            return self.run_waterfall(bankrupt, market, was_long, 0)
        self._credit(bankrupt, -left)  # the fills' rounding surplus goes to the vault
        self.token_balance -= left
        self.vault_assets += left
        return None

    def run_waterfall(self, account: str, market: int, was_long: bool, mark: int, open_interest: int = 0,
                      taker: str | None = None, closing: int = 0) -> Bankruptcy:
        """Vault, then the market's policy (its ``placements`` rule). ``mark``: the
        liquidation's (0 after ADL fills); ``open_interest``: the market's before the
        liquidation fill; ``closing``: what ``taker`` closed of the charged side."""
        deficit = -self.collateral[account]
        cap = self.markets[market].params.max_insurance_draw
        request = min(deficit, cap) if cap else deficit
        paid = min(request, self.vault_assets)
        self.vault_assets -= paid
        self.token_balance += paid
        residual = deficit - paid
        self.collateral[account] = 0
        parts = []
        if residual:
            place = self.placements.get(self.markets[market].loss_policy)
            by_side, by_equity = place(Residual(account, market, residual, was_long, mark, open_interest)) if place else (0, 0)
            if by_side > residual or by_equity > residual - by_side:
                by_side = by_equity = 0  # the clearing house places nothing on an answer beyond R
            if by_side:
                parts.append(self.socialize_open_interest(market, by_side, was_long, open_interest, taker, closing))
            if by_equity:
                parts.append(self.socialize_equity(by_equity))
            parts = [p for p in parts if p is not None]
        result = Bankruptcy(account, market, deficit, paid, residual, tuple(parts))
        self.bad_debt += residual - result.booked
        return result

    def socialize_equity(self, amount: int) -> Socialization | None:
        """Every account's equity shrinks by r = (amount + 1) / D, D = sum of all equity."""
        equities = {a: self.exact_equity(a) for a in self.accounts()}
        total = sum(equities.values(), Fraction(0))
        if total <= 0:
            return None
        rate = min(Fraction(amount + 1) / total, MAX_RATE)
        booked = amount
        covered = floor(rate * total)
        if covered <= amount:
            booked = max(covered, 1) - 1
        charges = {}
        for a, e in equities.items():
            if e:
                charges[a] = rate * e
                self.loss_pending[a] = self.loss_pending.get(a, Fraction(0)) + rate * e
        self.equity_scale *= 1 - rate
        self.loss_receivable += booked
        if self.precision:
            p = self.precision
            for a, v in self.loss_pending.items():
                self.loss_pending[a] = Fraction(round(v * p), p)
            self.equity_scale = Fraction(round(self.equity_scale * p), p)
        return Socialization(POLICY_EQUITY, amount, booked, total, rate, charges)

    def socialize_open_interest(self, market: int, amount: int, was_long: bool, open_interest: int,
                                taker: str | None, closing: int) -> Socialization | None:
        """The side opposite the bankrupt position, as it stood before the liquidation,
        pays ceil(amount * WAD**2 / OI) per contract, at most the mark and within MAX_INDEX;
        the taker pays now for what it closed of that side."""
        m = self.markets[market]
        if open_interest == 0:
            return None
        before = m.index(not was_long)
        room = MAX_INDEX + before if was_long else MAX_INDEX - before
        per_contract = min(ceil(Fraction(amount * FUNDING_SCALE, open_interest)), m.price * WAD, max(room, 0))
        booked = min(amount, per_contract * open_interest // FUNDING_SCALE)
        if booked == 0:
            return None
        if was_long:
            m.short_index -= per_contract
        else:
            m.long_index += per_contract
        self.funding_pool -= booked
        if closing:
            owed = ceil(Fraction(closing * per_contract, FUNDING_SCALE))
            self._credit(taker, -owed)
            self.funding_pool += owed
        return Socialization(POLICY_OPEN_INTEREST, amount, booked, Fraction(open_interest), Fraction(per_contract))

    def accounts(self) -> set[str]:
        """Every account that holds collateral or a position."""
        return set(self.collateral) | {a for (a, _), p in self.positions.items() if p.size or p.open_notional}
