# pragma version 0.4.3
"""
@title perpclear pending funding
@license MIT
@notice Funding a position owes since it last settled, as the clearing house
        books it: its side's funding index moved to now at the mark, minus
        the index it last settled at, times its size, rounded up (a payer
        pays the extra unit, a receiver receives one less). A stale mark
        accrues nothing until the next fresh one. The clearing house books
        it; the lens and the deleverager read it from outside with `_pending`,
        given the position as `positions(account, market)` returns it.
"""

from . import constants as c
from . import math
from interfaces import IClearingHouse
from interfaces import IPriceOracle


@internal
@pure
def _owed(size: int256, funding_index: int256, index_now: int256) -> int256:
    return math._div_ceil(size * (index_now - funding_index), c.FUNDING_SCALE)


@internal
@view
def _pending(
    clearing_house: IClearingHouse, oracle: IPriceOracle, position: IClearingHouse.Position, market: uint256
) -> int256:
    if position.size == 0:
        return 0
    state: IClearingHouse.MarketState = staticcall clearing_house.markets(market)
    mark: uint256 = 0
    fresh: bool = False
    mark, fresh = staticcall oracle.mark(market)
    if not fresh:
        mark = 0  # nothing accrues over a stale interval until the next fresh mark
    index: int256 = state.short_index
    if position.size > 0:
        index = state.long_index
    elapsed: uint256 = block.timestamp - state.last_accrual
    return self._owed(position.size, position.funding_index, index + state.funding_rate * convert(mark * elapsed, int256))
