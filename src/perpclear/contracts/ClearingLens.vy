# pragma version 0.4.3
"""
@title perpclear lens: what an account will be charged, can take out, and
       whether it can be liquidated
@license MIT
@notice Read-only views over the clearing house, for frontends, keepers and
        tests; it holds no money and no state but the clearing house's
        address (the clearing house keeps only what changes state, and its
        `health` and `equity`). Every figure is what the
        clearing house's next touch of the account would book, computed
        with the same rounding:
            settled = equity - sum over positions of (floor(s * p / WAD) - o)
        is the collateral after the pending EQUITY charge and the pending
        funding (OPEN_INTEREST charges included), what `withdraw` checks;
            max_withdraw = max(0, min(settled, equity - initial margin))
        so `withdraw(max_withdraw(a))` succeeds and one unit more reverts in
        the same state; a stale mark is valued as the clearing house values
        it (modules/valuation.vy). Figures are those of the block the view reads: with
        a funding rate set, a transaction mined seconds later owes a little
        more funding (leave a margin, or read with the pending block).
"""

from .modules import constants as c
from .modules import liquidation
from .modules import math
from .modules import funding
from .modules import market_layout as layout
from .modules import valuation
from interfaces import IClearingHouse
from interfaces import IDeleverager
from interfaces import IPriceOracle

# Accounts an ADL indicator compares with, per call.
MAX_QUEUE: constant(uint256) = 500
# Accounts `equities` and `account_states` read per call.
MAX_ACCOUNTS: constant(uint256) = 1000


struct Charges:
    collateral: int256  # as stored, before the pending charges
    loss_charge: int256  # pending EQUITY charge, >= 0 (a negative share is withheld)
    funding: int256  # pending funding, OPEN_INTEREST charges included: > 0 owed
    settled: int256  # collateral once both are booked
    equity: int256
    initial: uint256
    max_withdraw: uint256


struct AccountState:
    equity: int256  # as `health`
    maintenance: uint256  # as `health`
    sizes: int256[c.MAX_MARKETS]  # position size per market id (0 past `market_count`)


clearing_house: public(immutable(IClearingHouse))
oracle: public(immutable(IPriceOracle))


@deploy
def __init__(_clearing_house: IClearingHouse):
    clearing_house = _clearing_house
    oracle = IPriceOracle(staticcall _clearing_house.oracle())


@external
@view
def market_params(market: uint256) -> IClearingHouse.MarketParams:
    """
    @notice The risk and fee parameters of `market` (zero: not listed).
    """
    return layout._read_params(clearing_house, market)


@external
@view
def markets(market: uint256) -> IClearingHouse.MarketState:
    """
    @notice The funding, open interest and loss policy state of `market`.
    """
    return layout._read_state(clearing_house, market)


@external
@view
def equity(account: address) -> int256:
    """
    @notice Collateral plus unrealised PnL minus pending funding and pending
            charges, at the current marks, rounded against the account (the
            clearing house's `health(account).equity`; a stale mark values the
            position at its last mark moved against it).
    """
    return (staticcall clearing_house.health(account)).equity


@external
@view
def charges(account: address) -> Charges:
    """
    @notice The account's pending charges, settled collateral and the most it
            can withdraw now, in one call.
    """
    return self._charges(account)


@external
@view
def settled_collateral(account: address) -> int256:
    """
    @notice Collateral after the pending EQUITY charge and pending funding.
    """
    return self._charges(account).settled


@external
@view
def pending_loss_charge(account: address) -> int256:
    """
    @notice The EQUITY charge the account's next touch books (never < 0: a
            negative share is withheld, not credited).
    """
    return self._charges(account).loss_charge


@external
@view
def pending_funding(account: address, market: uint256) -> int256:
    """
    @notice Funding the account would pay (> 0) or receive (< 0) in `market`
            if settled now (with a stale mark: what is accrued so far).
    """
    assert market < staticcall clearing_house.market_count(), "lens: unknown market"
    mark: uint256 = 0
    fresh: bool = False
    mark, fresh = staticcall oracle.mark(market)
    if not fresh:
        mark = 0  # nothing accrues over a stale interval until the next fresh mark
    return funding._pending(clearing_house, staticcall clearing_house.positions(account, market), market, mark)


@external
@view
def max_withdraw(account: address) -> uint256:
    """
    @notice The largest amount `withdraw` accepts now.
    """
    return self._charges(account).max_withdraw


@external
@view
def equities(accounts: DynArray[address, MAX_ACCOUNTS]) -> DynArray[int256, MAX_ACCOUNTS]:
    """
    @notice The equity of each account (`health(a).equity` of the clearing
            house), for keepers and reports that read many accounts at once.
    """
    result: DynArray[int256, MAX_ACCOUNTS] = []
    for account: address in accounts:
        result.append((staticcall clearing_house.health(account)).equity)
    return result


@external
@view
def account_states(accounts: DynArray[address, MAX_ACCOUNTS]) -> DynArray[AccountState, MAX_ACCOUNTS]:
    """
    @notice Each account's equity and maintenance margin (`health`) and its
            position size in every market: what a keeper scanning for
            liquidations reads, in one call.
    """
    result: DynArray[AccountState, MAX_ACCOUNTS] = []
    for account: address in accounts:
        h: IClearingHouse.Health = staticcall clearing_house.health(account)
        sizes: int256[c.MAX_MARKETS] = empty(int256[c.MAX_MARKETS])
        held: uint256 = staticcall clearing_house.open_markets(account)
        for m: uint256 in range(c.MAX_MARKETS):
            if held >> m == 0:
                break
            if (held >> m) & 1 != 0:
                sizes[m] = (staticcall clearing_house.positions(account, m)).size
        result.append(AccountState(equity=h.equity, maintenance=h.maintenance, sizes=sizes))
    return result


@external
@view
def is_liquidatable(account: address) -> bool:
    """
    @notice True when the account holds a position, every mark it trades is
            fresh (`liquidate` never runs on a stale one) and its equity is
            below its maintenance margin.
    """
    return self._liquidatable(account)


@external
@view
def max_liquidation_size(account: address, market: uint256) -> uint256:
    """
    @notice Base amount of `market` a liquidator may take over now (0 when the
            account is not liquidatable), as `liquidate` clamps it.
    """
    assert market < staticcall clearing_house.market_count(), "lens: unknown market"
    size: int256 = (staticcall clearing_house.positions(account, market)).size
    if size == 0 or not self._liquidatable(account):
        return 0
    health: IClearingHouse.Health = staticcall clearing_house.health(account)
    params: IClearingHouse.MarketParams = layout._read_params(clearing_house, market)
    return liquidation._max_size(
        health.equity,
        health.maintenance,
        health.initial,
        size,
        staticcall oracle.price(market),
        params.mmr_bps,
        params.imr_bps,
        params.penalty_bps,
    )


@external
@view
def adl_indicator(
    account: address, market: uint256, others: DynArray[address, MAX_QUEUE]
) -> (uint256, uint256, bool):
    """
    @notice The exchange-style ADL indicator of `account`'s position in
            `market`, in one call: its rank (the deleverager's), its place in
            its side's queue among `others` (0: deleveraged first; ties by
            address, as `perpclear.adl.queue` orders them), and whether it is
            in the queue at all (a position in profit).
    """
    size: int256 = (staticcall clearing_house.positions(account, market)).size
    if size == 0:
        return 0, 0, False
    deleverager: IDeleverager = IDeleverager(staticcall clearing_house.loss_policies(c.POLICY_ADL))
    rank: uint256 = staticcall deleverager.rank(account, market)
    if rank == 0:
        return 0, 0, False
    place: uint256 = 0
    for other: address in others:
        if other == account:
            continue
        other_size: int256 = (staticcall clearing_house.positions(other, market)).size
        if other_size == 0 or (other_size > 0) != (size > 0):
            continue
        other_rank: uint256 = staticcall deleverager.rank(other, market)
        if other_rank > rank or (other_rank == rank and convert(other, uint160) < convert(account, uint160)):
            place += 1
    return rank, place, True


@internal
@view
def _liquidatable(account: address) -> bool:
    held: uint256 = staticcall clearing_house.open_markets(account)
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 != 0 and not staticcall oracle.is_fresh(m):
            return False
    health: IClearingHouse.Health = staticcall clearing_house.health(account)
    # Every position adds to the maintenance margin (rounded up, at least 1).
    return health.maintenance > 0 and health.equity < convert(health.maintenance, int256)


@internal
@view
def _charges(account: address) -> Charges:
    health: IClearingHouse.Health = staticcall clearing_house.health(account)
    result: Charges = Charges(
        collateral=staticcall clearing_house.collateral(account),
        loss_charge=0,
        funding=0,
        settled=health.equity,
        equity=health.equity,
        initial=health.initial,
        max_withdraw=0,
    )
    held: uint256 = staticcall clearing_house.open_markets(account)
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 == 0:
            continue
        position: IClearingHouse.Position = staticcall clearing_house.positions(account, m)
        mark: uint256 = 0
        fresh: bool = False
        mark, fresh = staticcall oracle.mark(m)
        accrual_mark: uint256 = mark
        if not fresh:
            accrual_mark = 0  # funding over the stale interval accrues at the next fresh mark
            mark = valuation._stale_mark(mark, position.size, layout._read_params(clearing_house, m).imr_bps)
        value: int256 = math._div_floor(position.size * convert(mark, int256), c.WAD_INT)
        result.settled -= value - position.open_notional
        result.funding += funding._pending(clearing_house, position, m, accrual_mark)
    # equity = collateral now + sum(value - o - funding), collateral now =
    # settled + funding: the EQUITY charge is what separates it from storage.
    result.loss_charge = result.collateral - (result.settled + result.funding)
    room: int256 = min(result.settled, health.equity - convert(health.initial, int256))
    if room > 0:
        result.max_withdraw = min(convert(room, uint256), convert(max_value(int128), uint256))
    return result
