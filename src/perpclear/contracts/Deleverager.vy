# pragma version 0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title perpclear deleverager (ADL)
@license MIT
@notice Auto-deleveraging for markets whose loss policy is ADL. A bankrupt
        account's last position is closed against opposite positions in
        profit at the bankruptcy price, highest rank first, until it is gone
        (which is when its residual is covered). Keepers supply the candidates,
        ranked off chain with `rank`; each candidate is checked here and a
        stale one is skipped with `CandidateSkipped`, never reverted on:
          1 SIDE    no position on the side opposite the bankrupt position
          2 PROFIT  unrealised PnL (funding included) not positive
          3 RANK    rank above the previous accepted candidate's
          4 EQUITY  its equity cannot pay the gap to the bankruptcy price
        Bankruptcy price, for the position s of an account with equity e < 0
        at mark p and insurance I available to it (it depends on the state
        only, never on the candidates passed):
            R   = -e - I                    (what the vault cannot cover)
            gap = ceil(R * WAD / |s|)
            p_b = p + gap  when s is long (its buyers pay more than the mark)
            p_b = p - gap  when s is short (floored at 1)
        Every counterparty of one call closes at the same p_b, so it pays
        |x| * gap / WAD more than closing at the mark, and the clearing house
        rounds each fill's notional for the bankrupt account: in all, at
        least R. The clearing house computes p_b itself (modules/bankruptcy)
        at the first fill and books every fill at it: this contract chooses
        and ranks the counterparties, never the price.
        The clearing house then finds the account flat with collateral of at
        least -I, and its waterfall draws the rest from the vault.
        Registered with the clearing house as the contract of the ADL policy
        id (`set_loss_policy_contract`), it is the one caller of `adl_fill`
        in ADL markets; it places a residual before the take-over, so at the
        waterfall `place` answers (0, 0) (interfaces/ILossPolicy.vyi). What
        it shares with PROFIT (ProfitPolicy.vy) is modules/keeper_fed.vy.
"""

from .modules import bankruptcy
from .modules import constants as c
from .modules import keeper_fed as fed
from .modules import market_layout as layout
from .modules import math
from interfaces import IClearingHouse
from interfaces import ILossPolicy

implements: ILossPolicy
initializes: fed

exports: (fed.clearing_house, fed.oracle, fed.insurance_vault, fed.place)


# Candidates per call: bounds the loop (about 90k gas each).
MAX_CANDIDATES: constant(uint256) = 50


event Deleveraged:
    account: indexed(address)  # the bankrupt account
    counterparty: indexed(address)
    market: indexed(uint256)
    size: uint256  # base amount closed on both sides
    price: uint256  # the bankruptcy price
    mark: uint256
    rank: uint256


event DeleverageRun:
    account: indexed(address)
    market: indexed(uint256)
    equity: int256  # of the bankrupt account, before
    insurance: uint256  # I, what the vault can still cover
    residual: uint256  # R
    price: uint256
    mark: uint256
    closed: uint256
    remaining: uint256  # base amount still open (no candidate left)


@deploy
def __init__(_clearing_house: IClearingHouse):
    """
    @param _clearing_house The clearing house; its owner must then register
           this contract for POLICY_ADL (`set_loss_policy_contract`).
    """
    fed.__init__(_clearing_house)


@external
def deleverage(account: address, market: uint256, candidates: DynArray[address, MAX_CANDIDATES]) -> uint256:
    """
    @notice Keepers only: closes the bankrupt `account`'s position in
            `market` against `candidates`, ranked highest first, at the
            bankruptcy price. Stops when the position is closed.
    @param candidates Opposite positions in profit, non-increasing rank.
    @return The base amount closed.
    """
    size: int256 = 0
    equity: int256 = 0
    insurance: uint256 = 0
    residual: uint256 = 0
    state: IClearingHouse.MarketState = empty(IClearingHouse.MarketState)
    size, equity, insurance, residual, state = fed._bankrupt(account, market, c.POLICY_ADL)
    assert len(candidates) > 0, "adl: no candidates"

    mark: uint256 = staticcall fed.oracle.price(market)
    remaining: uint256 = convert(abs(size), uint256)
    gap: uint256 = bankruptcy._gap(residual, size, mark)
    price: uint256 = bankruptcy._price(residual, size, mark)

    last_rank: uint256 = max_value(uint256)
    for candidate: address in candidates:
        position: IClearingHouse.Position = staticcall fed.clearing_house.positions(candidate, market)
        reason: uint8 = 0
        rank: uint256 = 0
        room: int256 = 0
        if candidate == account or position.size == 0 or (position.size > 0) == (size > 0):
            reason = fed.SKIP_SIDE
        else:
            rank, room = self._rank(candidate, position, mark, state)
            amount: uint256 = min(remaining, convert(abs(position.size), uint256))
            if rank == 0:
                reason = fed.SKIP_PROFIT
            elif rank > last_rank:
                reason = fed.SKIP_RANK
            elif room < convert(math._mul_div(amount, gap, c.WAD, True), int256) + 2:
                reason = fed.SKIP_EQUITY
            else:
                booked: uint256 = extcall fed.clearing_house.adl_fill(account, candidate, market, amount)
                assert booked == price, "adl: price mismatch"
                log Deleveraged(
                    account=account, counterparty=candidate, market=market, size=amount,
                    price=price, mark=mark, rank=rank,
                )
                last_rank = rank
                remaining -= amount
        if reason != 0:
            log fed.CandidateSkipped(account=account, counterparty=candidate, market=market, reason=reason)
        if remaining == 0:
            break

    closed: uint256 = convert(abs(size), uint256) - remaining
    log DeleverageRun(
        account=account, market=market, equity=equity, insurance=insurance, residual=residual,
        price=price, mark=mark, closed=closed, remaining=remaining,
    )
    return closed


@external
@view
def rank(account: address, market: uint256) -> uint256:
    """
    @notice ADL rank of the account's position in `market` (WAD = 1.0): PnL%
            times effective leverage, 0 when not in profit. Higher ranks are
            deleveraged first; the queue position is the number of positions
            on the same side with a higher rank.
    """
    position: IClearingHouse.Position = staticcall fed.clearing_house.positions(account, market)
    if position.size == 0:
        return 0
    rank: uint256 = 0
    room: int256 = 0
    rank, room = self._rank(account, position, staticcall fed.oracle.price(market), layout._read_state(fed.clearing_house, market))
    return rank


@internal
@view
def _rank(
    account: address, position: IClearingHouse.Position, mark: uint256, state: IClearingHouse.MarketState
) -> (uint256, int256):
    """
    @dev rank = PnL% * leverage = (pnl / |open notional|) * (|value| / equity),
         pnl = value - open notional - pending funding, value = size * mark,
         equity the account's (cross-margin) equity. 0 when pnl <= 0 or
         equity <= 0, at least 1 otherwise. Also returns the equity.
    """
    equity: int256 = (staticcall fed.clearing_house.health(account)).equity
    pnl: int256 = fed._pnl(position, mark, state)
    value: int256 = math._div_floor(position.size * convert(mark, int256), c.WAD_INT)
    if pnl <= 0 or equity <= 0:
        return 0, equity
    basis: uint256 = max(convert(abs(position.open_notional), uint256), 1)
    pnl_pct: uint256 = math._mul_div(convert(pnl, uint256), c.WAD, basis, False)
    rank: uint256 = math._mul_div(pnl_pct, convert(abs(value), uint256), convert(equity, uint256), False)
    return max(rank, 1), equity
