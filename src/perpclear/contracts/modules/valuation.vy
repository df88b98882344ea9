# pragma version 0.4.3
"""
@title perpclear valuation of a position whose mark is stale
@license MIT
@notice With a stale mark the last price may be wrong either way. The
        clearing house (and the lens, with the same rounding) then values
        the position at the last mark moved against its holder by the
        market's initial margin rate: a long at p(1 - imr), a short at
        p(1 + imr). Margin requirements use that price too. So a trader
        holding a stale market can still withdraw what even that valuation
        leaves free, and the vault's backstop equity is never overstated.
"""

from . import constants as c
from . import math


@internal
@pure
def _stale_mark(last: uint256, size: int256, imr_bps: uint256) -> uint256:
    if size > 0:
        return math._mul_div(last, c.BPS - imr_bps, c.BPS, False)
    return math._mul_div(last, c.BPS + imr_bps, c.BPS, True)
