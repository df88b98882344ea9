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
        PROFIT (`clawback`): the residual R of a bankrupt account (the same
        R as above) is charged to the accounts whose position in the market
        is in profit, pro rata to that profit, up to all of it:
            profit_i = min(pnl_i, equity_i)   (pnl at the mark, funding included)
            P        = sum of profit_i over the candidates in profit
            charge_i = profit_i                          when P <= R
            charge_i = floor(R * S_i / P) - floor(R * S_(i-1) / P)   otherwise,
        S_i the running sum of profit in the candidates' order: each charge is
        within one unit of R * profit_i / P and they add up to R exactly.
        Candidates are passed in ascending address order (no one counted
        twice); the clearing house takes each charge out of the payer's
        profit (its cost basis rises by it) and checks its bounds.
        Registered with the clearing house as the contract of both policy
        ids, ADL and PROFIT (`set_loss_policy_contract`), it is the one
        caller of `adl_fill` in their markets. Both place a residual before
        the take-over, so at the waterfall `place` answers (0, 0): what the
        keepers could not place stays bad debt (interfaces/ILossPolicy.vyi).
"""

from .modules import bankruptcy
from .modules import constants as c
from .modules import math
from .modules import funding
from .modules import market_layout as layout
from interfaces import IClearingHouse
from interfaces import IInsuranceVault
from interfaces import ILossPolicy
from interfaces import IPriceOracle

implements: ILossPolicy


# Candidates per call: bounds the loop (about 90k gas each).
MAX_CANDIDATES: constant(uint256) = 50

SKIP_SIDE: constant(uint8) = 1
SKIP_PROFIT: constant(uint8) = 2
SKIP_RANK: constant(uint8) = 3
SKIP_EQUITY: constant(uint8) = 4
SKIP_ORDER: constant(uint8) = 5

# Accounts per clawback call: bounds its loops (the block's gas limit binds first).
MAX_PAYERS: constant(uint256) = 1_000

clearing_house: public(immutable(IClearingHouse))
oracle: public(immutable(IPriceOracle))
insurance_vault: public(immutable(IInsuranceVault))


event Deleveraged:
    account: indexed(address)  # the bankrupt account
    counterparty: indexed(address)
    market: indexed(uint256)
    size: uint256  # base amount closed on both sides
    price: uint256  # the bankruptcy price
    mark: uint256
    rank: uint256


event CandidateSkipped:
    account: indexed(address)
    counterparty: indexed(address)
    market: indexed(uint256)
    reason: uint8


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


event ProfitCharged:
    account: indexed(address)  # the bankrupt account
    payer: indexed(address)
    market: indexed(uint256)
    amount: uint256  # moved from the payer to the bankrupt account
    profit: uint256  # the payer's profit counted, min(pnl, equity)


event ClawbackRun:
    account: indexed(address)
    market: indexed(uint256)
    equity: int256  # of the bankrupt account, before
    insurance: uint256  # I, what the vault can still cover
    residual: uint256  # R
    profit: uint256  # P, the profit of the candidates counted
    charged: uint256  # min(R, P): what the payers paid
    mark: uint256


@deploy
def __init__(_clearing_house: IClearingHouse):
    """
    @param _clearing_house The clearing house; its owner must then register
           this contract for POLICY_ADL and POLICY_PROFIT
           (`set_loss_policy_contract`).
    """
    clearing_house = _clearing_house
    oracle = IPriceOracle(staticcall _clearing_house.oracle())
    insurance_vault = IInsuranceVault(staticcall _clearing_house.insurance_vault())


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
    size, equity, insurance, residual, state = self._bankrupt(account, market, c.POLICY_ADL)
    assert len(candidates) > 0, "adl: no candidates"

    mark: uint256 = staticcall oracle.price(market)
    remaining: uint256 = convert(abs(size), uint256)
    gap: uint256 = bankruptcy._gap(residual, size, mark)
    price: uint256 = bankruptcy._price(residual, size, mark)

    last_rank: uint256 = max_value(uint256)
    for candidate: address in candidates:
        position: IClearingHouse.Position = staticcall clearing_house.positions(candidate, market)
        reason: uint8 = 0
        rank: uint256 = 0
        room: int256 = 0
        if candidate == account or position.size == 0 or (position.size > 0) == (size > 0):
            reason = SKIP_SIDE
        else:
            rank, room = self._rank(candidate, position, mark, state)
            amount: uint256 = min(remaining, convert(abs(position.size), uint256))
            if rank == 0:
                reason = SKIP_PROFIT
            elif rank > last_rank:
                reason = SKIP_RANK
            elif room < convert(math._mul_div(amount, gap, c.WAD, True), int256) + 2:
                reason = SKIP_EQUITY
            else:
                booked: uint256 = extcall clearing_house.adl_fill(account, candidate, market, amount)
                assert booked == price, "adl: price mismatch"
                log Deleveraged(
                    account=account, counterparty=candidate, market=market, size=amount,
                    price=price, mark=mark, rank=rank,
                )
                last_rank = rank
                remaining -= amount
        if reason != 0:
            log CandidateSkipped(account=account, counterparty=candidate, market=market, reason=reason)
        if remaining == 0:
            break

    closed: uint256 = convert(abs(size), uint256) - remaining
    log DeleverageRun(
        account=account, market=market, equity=equity, insurance=insurance, residual=residual,
        price=price, mark=mark, closed=closed, remaining=remaining,
    )
    return closed


@external
def clawback(account: address, market: uint256, candidates: DynArray[address, MAX_PAYERS]) -> uint256:
    """
    @notice Keepers only, PROFIT markets: charges the bankrupt `account`'s
            residual to the candidates in profit in `market`, pro rata to
            their profit and at most all of it (see the contract's notes);
            each charge comes out of the payer's profit (its cost basis).
            Its position stays open for a keeper to take over at the mark
            (the keeper contract's `clawback` does both in one transaction);
            the waterfall then draws what is left from the insurance vault,
            and what the candidates' profit could not cover becomes bad debt.
    @param candidates The accounts in profit in `market`, in ascending
            address order (any other is skipped with its reason).
    @return What the payers were charged in all.
    """
    size: int256 = 0
    equity: int256 = 0
    insurance: uint256 = 0
    residual: uint256 = 0
    state: IClearingHouse.MarketState = empty(IClearingHouse.MarketState)
    size, equity, insurance, residual, state = self._bankrupt(account, market, c.POLICY_PROFIT)
    assert len(candidates) > 0, "adl: no candidates"
    mark: uint256 = staticcall oracle.price(market)

    payers: DynArray[address, MAX_PAYERS] = []
    profits: DynArray[uint256, MAX_PAYERS] = []
    total: uint256 = 0
    previous: uint256 = 0
    for candidate: address in candidates:
        reason: uint8 = 0
        position: IClearingHouse.Position = staticcall clearing_house.positions(candidate, market)
        if convert(candidate, uint256) <= previous:
            reason = SKIP_ORDER
        elif candidate == account or position.size == 0:
            reason = SKIP_SIDE
        else:
            previous = convert(candidate, uint256)
            profit: int256 = min(
                self._pnl(position, mark, state),
                (staticcall clearing_house.health(candidate)).equity,
            )
            if profit <= 0:
                reason = SKIP_PROFIT
            else:
                payers.append(candidate)
                profits.append(convert(profit, uint256))
                total += convert(profit, uint256)
        if reason != 0:
            log CandidateSkipped(account=account, counterparty=candidate, market=market, reason=reason)

    charged: uint256 = 0
    running: uint256 = 0
    for i: uint256 in range(len(payers), bound=MAX_PAYERS):
        amount: uint256 = profits[i]
        if total > residual:
            running += profits[i]
            amount = math._mul_div(residual, running, total, False) - charged
        if amount > 0:
            extcall clearing_house.adl_fill(account, payers[i], market, amount)
            charged += amount
        # Every payer counted in P is logged, a share floored to 0 too: the audit replays the run from the logs.
        log ProfitCharged(account=account, payer=payers[i], market=market, amount=amount, profit=profits[i])
    log ClawbackRun(
        account=account, market=market, equity=equity, insurance=insurance, residual=residual,
        profit=total, charged=charged, mark=mark,
    )
    return charged


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    """
    @notice ILossPolicy: ADL and PROFIT place a residual before the take-over
            (`deleverage`, `clawback`); at the waterfall nothing is left to
            place, so what the keepers could not place stays bad debt.
    """
    return empty(ILossPolicy.Placement)


@external
@view
def rank(account: address, market: uint256) -> uint256:
    """
    @notice ADL rank of the account's position in `market` (WAD = 1.0): PnL%
            times effective leverage, 0 when not in profit. Higher ranks are
            deleveraged first; the queue position is the number of positions
            on the same side with a higher rank.
    """
    position: IClearingHouse.Position = staticcall clearing_house.positions(account, market)
    if position.size == 0:
        return 0
    rank: uint256 = 0
    room: int256 = 0
    rank, room = self._rank(account, position, staticcall oracle.price(market), layout._read_state(clearing_house, market))
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
    equity: int256 = (staticcall clearing_house.health(account)).equity
    pnl: int256 = self._pnl(position, mark, state)
    value: int256 = math._div_floor(position.size * convert(mark, int256), c.WAD_INT)
    if pnl <= 0 or equity <= 0:
        return 0, equity
    basis: uint256 = max(convert(abs(position.open_notional), uint256), 1)
    pnl_pct: uint256 = math._mul_div(convert(pnl, uint256), c.WAD, basis, False)
    rank: uint256 = math._mul_div(pnl_pct, convert(abs(value), uint256), convert(equity, uint256), False)
    return max(rank, 1), equity


@internal
@view
def _pnl(position: IClearingHouse.Position, mark: uint256, state: IClearingHouse.MarketState) -> int256:
    """
    @dev Unrealised PnL at `mark`, pending funding included, as the clearing
         house books it: floor(size * mark / WAD) - open notional - funding owed.
    """
    value: int256 = math._div_floor(position.size * convert(mark, int256), c.WAD_INT)
    return value - position.open_notional - funding._pending_in(state, position, mark)


@internal
@view
def _bankrupt(
    account: address, market: uint256, policy: uint8
) -> (int256, int256, uint256, uint256, IClearingHouse.MarketState):
    """
    @dev Checks that `account` is bankrupt beyond the insurance vault with
         its last position in `market`, a market of `policy`.
    @return Its size there, its equity e < 0, the insurance I the vault can
         pay it, the residual R = -e - I > 0 and the market's state (its
         words are read once per call).
    """
    assert staticcall clearing_house.is_keeper(msg.sender), "adl: not keeper"
    assert market < staticcall clearing_house.market_count(), "adl: unknown market"
    words: (uint256, uint256, uint256, int256, int256) = staticcall clearing_house.market_words(market)
    state: IClearingHouse.MarketState = layout._state(words[2], words[3], words[4])
    assert state.loss_policy == policy, "adl: wrong loss policy"
    size: int256 = (staticcall clearing_house.positions(account, market)).size
    assert size != 0, "adl: no position"
    # One word whatever the number of markets listed: its open markets.
    assert staticcall clearing_house.open_markets(account) == 1 << market, "adl: other positions first"
    equity: int256 = (staticcall clearing_house.health(account)).equity
    assert equity < 0, "adl: not bankrupt"
    insurance: uint256 = staticcall insurance_vault.idle_assets()
    cap: uint256 = words[1]  # the market's insurance draw cap
    if cap > 0:
        insurance = min(insurance, cap)
    deficit: uint256 = convert(-equity, uint256)
    assert deficit > insurance, "adl: insurance covers, liquidate"
    return size, equity, insurance, deficit - insurance, state
