# pragma version 0.4.3
"""
@title perpclear pending funding
@license MIT
@notice Funding a position owes since it last settled, as the clearing house
        books it: its side's funding index moved to now at the mark, minus
        the index it last settled at, times its size, rounded up (a payer
        pays the extra unit, a receiver receives one less). A stale mark
        accrues nothing until the next fresh one. The clearing house books
        it; the lens and the deleverager read it from outside with `_pending`
        (or `_pending_in`, given the market's state), given the position as
        `positions(account, market)` returns it and the mark they already
        read (0 when stale).
"""

from . import constants as c
from . import math
from . import market_layout as layout
from interfaces import IClearingHouse


@internal
@pure
def _owed(size: int256, funding_index: int256, index_now: int256) -> int256:
    return math._div_ceil(size * (index_now - funding_index), c.FUNDING_SCALE)


@internal
@pure
def _index_now(index: int256, rate: int256, mark: uint256, elapsed: uint256) -> int256:
    # A side's funding index moved over `elapsed` seconds at `mark` (0: stale, nothing accrues).
    return index + rate * convert(mark * elapsed, int256)


@internal
@view
def _pending(
    clearing_house: IClearingHouse, position: IClearingHouse.Position, market: uint256, mark: uint256
) -> int256:
    if position.size == 0:
        return 0
    return self._pending_in(layout._read_state(clearing_house, market), position, mark)


@internal
@view
def _pending_in(state: IClearingHouse.MarketState, position: IClearingHouse.Position, mark: uint256) -> int256:
    """
    @dev The same, given the market's state (a caller reading many positions
         of one market reads it once).
    """
    if position.size == 0:
        return 0
    index: int256 = state.short_index
    if position.size > 0:
        index = state.long_index
    return self._owed(
        position.size,
        position.funding_index,
        self._index_now(index, state.funding_rate, mark, block.timestamp - state.last_accrual),
    )
