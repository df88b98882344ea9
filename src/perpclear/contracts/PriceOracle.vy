# pragma version ~=0.4.3
"""
@title PriceOracle
@license MIT
@notice Per-market mark prices pushed by authorised keepers. Each market has a
        staleness limit (`max_age`, seconds) and an optional maximum move
        (`max_move_bps`, 100% = 10_000; 0 disables the check, e.g. for crash
        scenarios) that binds over a time window (`move_window`, seconds, at
        least one: every block): however many updates a keeper sends, in one
        batch, one block or many, the mark stays within `max_move_bps` of the
        anchor, the mark that stood when the window opened. A batch may name
        a market once. Prices are in collateral-token smallest units per 1
        whole base unit: 2000 USDC (6 decimals) = 2_000_000_000.
@custom:kill To stop trading on marks, the owner removes every keeper with
        `set_keeper(keeper, False)`: after `max_age` seconds `price()` reverts
        "oracle: stale price", and `mark()` reports the last mark as stale:
        the clearing house then stops liquidations and opening trades in
        that market and values its positions conservatively for the rest.
        Re-adding a keeper resumes updates.
"""

from interfaces import IPriceOracle
from .modules import ownership
from .modules import governed

implements: IPriceOracle
initializes: ownership
initializes: governed

exports: (
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
    governed.timelock,
)

# 100% in basis points.
BPS: constant(uint256) = 10_000
# Largest batch accepted by `set_prices`.
MAX_BATCH: constant(uint256) = 8
# Move windows: one second (every block has its own timestamp) to one day.
MAX_MOVE_WINDOW: constant(uint256) = 86_400


struct Anchor:
    price: uint256  # the mark when the window opened
    opened_at: uint256  # timestamp the window opened

keepers: public(HashMap[address, bool])

# Per market, one word read by every `mark`: the price (low PRICE_BITS), the
# timestamp it was set (TIME_BITS above it) and the staleness limit in
# seconds (the top bits). A listed market's word is never zero (its price is
# not): an unlisted market has no word.
entries: HashMap[uint256, uint256]
PRICE_BITS: constant(uint256) = 128
TIME_BITS: constant(uint256) = 64
MAX_PRICE: constant(uint256) = (1 << PRICE_BITS) - 1
MAX_AGE: constant(uint256) = (1 << (256 - PRICE_BITS - TIME_BITS)) - 1
# Largest change within a move window vs its anchor, 100% = 10_000; 0 = no limit.
max_move_bps: public(HashMap[uint256, uint256])
# Seconds a move window lasts (1 = per block).
move_window: public(HashMap[uint256, uint256])
anchors: public(HashMap[uint256, Anchor])


@deploy
def __init__(_timelock: address):
    """
    @notice The deployer becomes the owner. No keeper and no market yet.
    @param _timelock The deployment's governance timelock (Timelock.vy).
    """
    ownership.__init__()
    governed.__init__(_timelock)


@external
def set_keeper(keeper: address, allowed: bool):
    """
    @notice Authorise or revoke a price keeper. Owner only.
    @param keeper Keeper account, not the zero address.
    @param allowed True to authorise, False to revoke.
    """
    ownership._check_owner()
    if allowed:
        governed._check(keccak256(slice(msg.data, 0, 68)))
    assert keeper != empty(address), "oracle: zero address"
    self.keepers[keeper] = allowed
    log IPriceOracle.KeeperSet(keeper=keeper, allowed=allowed)


@external
def add_market(market: uint256, max_age: uint256, max_move_bps: uint256, initial_price: uint256):
    """
    @notice List a new market with its first price (timestamped now). Owner only.
    @param market Market id (small integer, e.g. 0..7).
    @param max_age Staleness limit in seconds, > 0.
    @param max_move_bps Max move from the window's anchor, 100% = 10_000; 0 = no limit.
    @param initial_price First mark, > 0.
    """
    ownership._check_owner()
    assert self.entries[market] == 0, "oracle: market exists"
    self._check_max_age(max_age)
    assert max_move_bps <= BPS, "oracle: max move too large"
    self._check_price(initial_price)
    self.entries[market] = self._entry(initial_price, block.timestamp, max_age)
    self.max_move_bps[market] = max_move_bps
    self.move_window[market] = 1
    log IPriceOracle.MarketAdded(
        market=market, max_age=max_age, max_move_bps=max_move_bps, price=initial_price
    )


@external
def set_max_age(market: uint256, max_age: uint256):
    """
    @notice Change the staleness limit of a market. Owner only.
    @param market Listed market id.
    @param max_age Staleness limit in seconds, > 0.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 68)))
    entry: uint256 = self._entry_of(market)
    self._check_max_age(max_age)
    self.entries[market] = self._entry(entry & MAX_PRICE, (entry >> PRICE_BITS) & ((1 << TIME_BITS) - 1), max_age)
    log IPriceOracle.MaxAgeSet(market=market, max_age=max_age)


@external
def set_max_move(market: uint256, max_move_bps: uint256):
    """
    @notice Change the maximum move within a move window of a market. Owner
            only. The next update opens a new window.
    @param market Listed market id.
    @param max_move_bps 100% = 10_000; 0 disables the check (crash scenarios).
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 68)))
    self._entry_of(market)  # reverts unless listed
    assert max_move_bps <= BPS, "oracle: max move too large"
    self.max_move_bps[market] = max_move_bps
    self.anchors[market] = empty(Anchor)  # the next update opens a window
    log IPriceOracle.MaxMoveSet(market=market, max_move_bps=max_move_bps)


@external
def set_move_window(market: uint256, seconds: uint256):
    """
    @notice Change the window over which `max_move_bps` binds. Owner only.
            The next update opens a new window.
    @param market Listed market id.
    @param seconds 1 (per block) to 86_400 (one day).
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 68)))
    self._entry_of(market)  # reverts unless listed
    assert seconds >= 1 and seconds <= MAX_MOVE_WINDOW, "oracle: bad move window"
    self.move_window[market] = seconds
    self.anchors[market] = empty(Anchor)  # the next update opens a window
    log IPriceOracle.MoveWindowSet(market=market, seconds=seconds)


@external
def set_price(market: uint256, price: uint256):
    """
    @notice Push a new mark for `market`, timestamped now. Keeper only.
    @param market Listed market id.
    @param price New mark, > 0, within `max_move_bps` of the previous one.
    """
    assert self.keepers[msg.sender], "oracle: not keeper"
    self._set_price(market, price)


@external
def set_prices(markets: DynArray[uint256, MAX_BATCH], prices: DynArray[uint256, MAX_BATCH]):
    """
    @notice Push several marks in one transaction. Keeper only. Each entry is
            checked as in `set_price`; any bad entry reverts the whole batch.
    @param markets Listed market ids, each at most once.
    @param prices New marks, same length as `markets`.
    """
    assert self.keepers[msg.sender], "oracle: not keeper"
    assert len(markets) == len(prices), "oracle: length mismatch"
    for i: uint256 in range(len(markets), bound=MAX_BATCH):
        for j: uint256 in range(i, bound=MAX_BATCH):
            assert markets[j] != markets[i], "oracle: duplicate market"
        self._set_price(markets[i], prices[i])


@view
@external
def price(market: uint256) -> uint256:
    """
    @notice Fresh mark price of `market`.
    @dev Reverts "oracle: unknown market" or "oracle: stale price" when
         `block.timestamp - updated_at > max_age`.
    @param market Market id.
    @return Price in collateral smallest units per whole base unit.
    """
    price: uint256 = 0
    fresh: bool = False
    price, fresh = self._mark(market)
    assert fresh, "oracle: stale price"
    return price


@view
@external
def last_price(market: uint256) -> (uint256, uint256):
    """
    @notice Last mark of `market` and when it was set, without a staleness
            check. Never reverts for a listed market.
    @param market Market id.
    @return price Last mark.
    @return updated_at Timestamp of the last update.
    """
    entry: uint256 = self._entry_of(market)
    return entry & MAX_PRICE, (entry >> PRICE_BITS) & ((1 << TIME_BITS) - 1)


@view
@external
def mark(market: uint256) -> (uint256, bool):
    """
    @notice Last mark of `market` and whether it is fresh (`price` would
            succeed). Never reverts for a listed market: consumers decide
            what a stale mark still allows.
    @param market Market id.
    @return price Last mark.
    @return fresh True if not older than `max_age`.
    """
    return self._mark(market)


@view
@external
def is_fresh(market: uint256) -> bool:
    """
    @notice Whether `price(market)` would succeed now. False for unknown markets.
    @param market Market id.
    @return True if listed and not stale.
    """
    if self.entries[market] == 0:
        return False
    return self._mark(market)[1]


@view
@external
def listed(market: uint256) -> bool:
    """
    @notice Whether `market` is listed.
    """
    return self.entries[market] != 0


@view
@external
def max_age(market: uint256) -> uint256:
    """
    @notice Seconds after which the mark of `market` is stale (0: not listed).
    """
    return self.entries[market] >> (PRICE_BITS + TIME_BITS)


@internal
def _set_price(market: uint256, price: uint256):
    entry: uint256 = self._entry_of(market)
    self._check_price(price)
    previous: uint256 = entry & MAX_PRICE
    max_move: uint256 = self.max_move_bps[market]
    if max_move > 0:
        anchor: Anchor = self.anchors[market]
        if block.timestamp >= anchor.opened_at + self.move_window[market]:
            # A new window opens at the mark that stands now.
            anchor = Anchor(price=previous, opened_at=block.timestamp)
            self.anchors[market] = anchor
        delta: uint256 = 0
        if price > anchor.price:
            # cannot underflow: price > anchor
            delta = unsafe_sub(price, anchor.price)
        else:
            # cannot underflow: anchor >= price
            delta = unsafe_sub(anchor.price, price)
        # exact integer check: delta / anchor <= max_move / 10_000
        assert delta * BPS <= anchor.price * max_move, "oracle: move too large"
    self.entries[market] = self._entry(price, block.timestamp, entry >> (PRICE_BITS + TIME_BITS))
    log IPriceOracle.PriceUpdated(market=market, price=price, previous=previous, keeper=msg.sender)


@view
@internal
def _entry_of(market: uint256) -> uint256:
    entry: uint256 = self.entries[market]
    assert entry != 0, "oracle: unknown market"
    return entry


@view
@internal
def _mark(market: uint256) -> (uint256, bool):
    entry: uint256 = self._entry_of(market)
    updated_at: uint256 = (entry >> PRICE_BITS) & ((1 << TIME_BITS) - 1)
    return entry & MAX_PRICE, block.timestamp - updated_at <= entry >> (PRICE_BITS + TIME_BITS)


@pure
@internal
def _entry(price: uint256, updated_at: uint256, max_age: uint256) -> uint256:
    return price | (updated_at << PRICE_BITS) | (max_age << (PRICE_BITS + TIME_BITS))


@pure
@internal
def _check_price(price: uint256):
    assert price > 0, "oracle: zero price"
    assert price <= MAX_PRICE, "oracle: price too large"


@pure
@internal
def _check_max_age(max_age: uint256):
    assert max_age > 0, "oracle: zero max age"
    assert max_age <= MAX_AGE, "oracle: max age too large"
