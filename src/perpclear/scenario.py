"""Cascade scenarios: a TOML file, validated, turned into deterministic inputs.

A scenario names the markets and their parameters, the traders (how many, how
much collateral, what leverage, long or short, which markets), the insurance
vault, the keeper's behaviour and a price path per market. Everything random
comes from one ``random.Random(seed)``, so a scenario and a seed always give the
same traders and the same path. ``load_scenario`` answers a bad file with a
``ScenarioError`` whose message is one line naming the field.

Units in the file are human ones: prices and collateral in whole tokens,
ratios in basis points, leverage as a plain number. See ``docs/cascades.md``.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perpclear.model import MarketParams
from perpclear.units import POLICIES
SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot run; the message is one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------- price paths


class Explicit(_Strict):
    """The prices, one per block, in whole collateral units."""

    kind: Literal["explicit"]
    prices: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)


class Gap(_Strict):
    """Flat for ``before`` blocks, then one jump of ``move_pct`` held for ``after`` blocks."""

    kind: Literal["gap"]
    move_pct: float = Field(gt=-100, lt=1_000)
    before: int = Field(default=1, ge=0, le=10_000)
    after: int = Field(default=3, ge=1, le=10_000)


class FlashCrash(_Strict):
    """Down ``depth_pct`` in ``down`` equal steps, then back up by ``rebound_pct`` of the fall in ``up`` steps."""

    kind: Literal["flash_crash"]
    depth_pct: float = Field(gt=0, lt=100)
    down: int = Field(default=3, ge=1, le=10_000)
    rebound_pct: float = Field(default=50, ge=0, le=100)
    up: int = Field(default=3, ge=0, le=10_000)


class SlowBleed(_Strict):
    """Down ``total_pct`` over ``blocks`` equal multiplicative steps."""

    kind: Literal["slow_bleed"]
    total_pct: float = Field(gt=0, lt=100)
    blocks: int = Field(ge=1, le=10_000)


class FreezeJump(_Strict):
    """The oracle freezes for ``frozen`` blocks (no update), then jumps by ``move_pct``."""

    kind: Literal["freeze_jump"]
    frozen: int = Field(ge=1, le=10_000)
    move_pct: float = Field(gt=-100, lt=1_000)
    after: int = Field(default=2, ge=1, le=10_000)


PricePath = Annotated[Union[Explicit, Gap, FlashCrash, SlowBleed, FreezeJump], Field(discriminator="kind")]


def path_points(path: PricePath, start: float) -> list[float | None]:
    """The path as target prices per block; ``None`` is a block without an oracle update."""
    if isinstance(path, Explicit):
        return list(path.prices)
    if isinstance(path, Gap):
        return [start] * path.before + [start * (1 + path.move_pct / 100)] * path.after
    if isinstance(path, FlashCrash):
        bottom = start * (1 - path.depth_pct / 100)
        down = [start + (bottom - start) * (i + 1) / path.down for i in range(path.down)]
        top = bottom + (start - bottom) * path.rebound_pct / 100
        up = [bottom + (top - bottom) * (i + 1) / path.up for i in range(path.up)]
        return down + up
    if isinstance(path, SlowBleed):
        step = (1 - path.total_pct / 100) ** (1 / path.blocks)
        return [start * step ** (i + 1) for i in range(path.blocks)]
    assert isinstance(path, FreezeJump)
    return [None] * path.frozen + [start * (1 + path.move_pct / 100)] * path.after


# --------------------------------------------------------------------- sections


class Market(_Strict):
    name: str = Field(min_length=1, max_length=32)
    price: float = Field(gt=0, le=10**9)
    imr_bps: int = Field(default=1_000, gt=0, le=10_000)
    mmr_bps: int = Field(default=500, gt=0, le=10_000)
    penalty_bps: int = Field(default=250, ge=0, le=10_000)
    liquidator_share_bps: int = Field(default=5_000, ge=0, le=10_000)
    maker_fee_bps: int = Field(default=2, ge=0, le=1_000)
    taker_fee_bps: int = Field(default=5, ge=0, le=1_000)
    max_insurance_draw: float = Field(default=0, ge=0)  # whole tokens per bankruptcy; 0 = no cap
    # Impact model: every whole collateral unit of notional liquidated moves
    # this market's mark by impact_bps / impact_depth (down for liquidated
    # longs, up for liquidated shorts), from the next block on.
    impact_bps: float = Field(default=0, ge=0, le=10_000)
    impact_depth: float = Field(default=1_000_000, gt=0)
    path: PricePath

    @model_validator(mode="after")
    def _margins(self) -> "Market":
        if self.mmr_bps >= self.imr_bps:
            raise ValueError(f"mmr_bps ({self.mmr_bps}) must be below imr_bps ({self.imr_bps})")
        return self

    def params(self, unit: int) -> MarketParams:
        return MarketParams(
            imr_bps=self.imr_bps,
            mmr_bps=self.mmr_bps,
            penalty_bps=self.penalty_bps,
            liquidator_share_bps=self.liquidator_share_bps,
            maker_fee_bps=self.maker_fee_bps,
            taker_fee_bps=self.taker_fee_bps,
            max_insurance_draw=int(Fraction(str(self.max_insurance_draw)) * unit),
        )


class Range(_Strict):
    min: float = Field(gt=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class Traders(_Strict):
    count: int = Field(ge=1, le=100_000)
    collateral: Range  # whole tokens, log-uniform between min and max
    leverage: Range  # notional / collateral at the opening price
    long_share: float = Field(default=0.5, ge=0, le=1)
    # Weights of the markets a trader opens in (by market name); a trader in
    # several markets splits its notional between them (cross margin).
    markets: dict[str, float] = Field(default_factory=dict)
    both_share: float = Field(default=0, ge=0, le=1)  # share of traders in every listed market


class Vault(_Strict):
    assets: float = Field(ge=0)  # whole tokens deposited by the insurer


class Keeper(_Strict):
    delay_blocks: int = Field(default=0, ge=0, le=1_000)  # a liquidatable account is acted on this many blocks later
    liquidations_per_block: int = Field(default=1_000, ge=1, le=100_000)
    gas_budget: int = Field(default=30_000_000, ge=100_000)  # per block, counted at `gas_per_liquidation`
    gas_per_liquidation: int = Field(default=400_000, ge=21_000)
    settle_blocks: int = Field(default=20, ge=0, le=10_000)  # blocks at the last price to finish the work


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(default=1, ge=0)
    decimals: Literal[6, 18] = 6
    loss_policy: Literal["EQUITY", "OPEN_INTEREST", "ADL", "PROFIT"] = "EQUITY"
    market_maker_collateral: float = Field(default=0, ge=0)  # 0: enough for the book it takes
    markets: list[Market] = Field(min_length=1, max_length=8)
    traders: Traders
    vault: Vault
    keeper: Keeper = Keeper()

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        names = [m.name for m in self.markets]
        if len(set(names)) != len(names):
            raise ValueError(f"markets: duplicate name in {names}")
        for name in self.traders.markets:
            if name not in names:
                raise ValueError(f"traders.markets: unknown market {name!r} (markets are {names})")
        for m in self.markets:
            if self.traders.leverage.max * m.imr_bps >= 10_000:
                raise ValueError(
                    f"traders.leverage.max ({self.traders.leverage.max}) must be below 1 / imr of {m.name} "
                    f"({10_000 / m.imr_bps:g})"
                )
        return self

    @property
    def unit(self) -> int:
        return 10**self.decimals

    @property
    def policy(self) -> int:
        return POLICIES[self.loss_policy]

    def with_overrides(self, **changes) -> "Scenario":
        """A copy with top-level fields replaced (validated again)."""
        data = self.model_dump()
        data.update(changes)
        return parse_scenario(data, origin=self.name)


# ------------------------------------------------------------------ loading


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in _KINDS))


_KINDS = {"explicit", "gap", "flash_crash", "slow_bleed", "freeze_jump"}


def parse_scenario(data: dict, origin: str = "scenario") -> Scenario:
    """Validates a scenario given as a dict (a parsed file or keyword arguments)."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = _field(err["loc"])
        # Checks across sections name their fields in the message itself.
        raise ScenarioError(f"{origin}: {where}: {msg}" if where else f"{origin}: {msg}") from None


def load_scenario(source: str | Path) -> Scenario:
    """Reads a scenario file, or a bundled one by name (``flash-crash``)."""
    path = Path(source)
    if not path.exists() and not path.suffix:
        path = SCENARIOS_DIR / f"{source}.toml"
    if not path.is_file():
        bundled = ", ".join(sorted(p.stem for p in SCENARIOS_DIR.glob("*.toml")))
        raise ScenarioError(f"{source}: no such scenario file (bundled: {bundled})")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path.name}: not valid TOML: {exc}") from None
    return parse_scenario(data, origin=path.name)


def bundled_scenarios() -> list[Path]:
    return sorted(SCENARIOS_DIR.glob("*.toml"))


# ----------------------------------------------------------- deterministic draws


@dataclass(frozen=True)
class TraderPlan:
    """One trader as drawn from the scenario: deposit and positions to open."""

    index: int
    collateral: int  # token units
    is_long: bool
    # (market index, size in base units 1e18) per market it trades
    legs: tuple[tuple[int, int], ...]


def plan_traders(sc: Scenario) -> list[TraderPlan]:
    """Draws every trader from ``sc.seed``: same scenario, same traders."""
    rng = random.Random(sc.seed)
    names = [m.name for m in sc.markets]
    weights = sc.traders.markets or {names[0]: 1.0}
    listed = [(names.index(n), w) for n, w in weights.items() if w > 0]
    lo, hi = sc.traders.collateral.min, sc.traders.collateral.max
    plans = []
    for i in range(sc.traders.count):
        # Log-uniform collateral, rounded to whole cents of a token.
        whole = lo * (hi / lo) ** rng.random()
        collateral = int(Fraction(round(whole * 100), 100) * sc.unit)
        leverage = Fraction(str(round(rng.uniform(sc.traders.leverage.min, sc.traders.leverage.max), 4)))
        is_long = rng.random() < sc.traders.long_share
        if len(listed) > 1 and rng.random() < sc.traders.both_share:
            chosen = listed
        else:
            chosen = [rng.choices(listed, weights=[w for _, w in listed])[0]]
        total_w = sum(Fraction(str(w)) for _, w in chosen)
        legs = []
        for market, w in chosen:
            notional = collateral * leverage * Fraction(str(w)) / total_w
            price = int(Fraction(str(sc.markets[market].price)) * sc.unit)
            size = int(notional * 10**18 / price) // 10**12 * 10**12  # whole micro-contracts
            if size > 0:
                legs.append((market, size))
        plans.append(TraderPlan(i, collateral, is_long, tuple(legs)))
    return plans


def to_units(value: float, unit: int) -> int:
    """A human price or amount (whole tokens, up to 1e-6 precision) in token units."""
    return int(Fraction(round(value * 10**6), 10**6) * unit)
