# pragma version 0.4.3
"""
@title perpclear liquidation size
@license MIT
@notice How much of a position a liquidator may take over: the clearing
        house books it, the lens shows it, with the same rounding.
"""

from . import constants as c
from . import math


@internal
@pure
def _max_size(
    equity: int256,
    maintenance: uint256,
    initial: uint256,
    size: int256,
    mark: uint256,
    mmr_bps: uint256,
    imr_bps: uint256,
    penalty_bps: uint256,
) -> uint256:
    """
    @dev Base amount whose takeover lifts the account to its liquidation
         target, halfway between maintenance and initial margin (at exactly
         maintenance, the next second of funding would make it liquidatable
         again). Taking over notional x lowers the target by x * t,
         t = (mmr + imr) / 2, and equity by the penalty x * penalty, so
         x >= (target - equity) / (t - penalty). The formula is exact in
         rationals; the rounding of the penalty and of the remaining value can
         leave the account a few units short of the target, which is still
         far above maintenance. Everything when equity <= 0; nothing when
         the account is at or above the target.
    """
    whole: uint256 = convert(abs(size), uint256)
    if equity <= 0:
        return whole
    target: uint256 = (maintenance + initial + 1) // 2
    if convert(equity, uint256) >= target:
        return 0
    shortfall: uint256 = target - convert(equity, uint256)
    ratio: uint256 = (mmr_bps + imr_bps) // 2 - penalty_bps
    notional: uint256 = math._mul_div(shortfall, c.BPS, ratio, True)
    return min(whole, math._mul_div(notional, c.WAD, mark, True))
