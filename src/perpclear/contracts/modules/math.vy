# pragma version 0.4.3
"""
@title perpclear rounding helpers
@license MIT
@notice Integer division with an explicit rounding direction. Callers pick the
        direction that favours the system; Vyper's `//` truncates toward zero,
        which is neither floor nor ceiling for negative numbers.
"""


@internal
@pure
def _div_floor(a: int256, b: int256) -> int256:
    """
    @dev Floor division for b > 0: the largest q with q * b <= a.
    """
    q: int256 = a // b
    if a % b != 0 and a < 0:
        q -= 1
    return q


@internal
@pure
def _div_ceil(a: int256, b: int256) -> int256:
    """
    @dev Ceiling division for b > 0: the smallest q with q * b >= a.
    """
    q: int256 = a // b
    if a % b != 0 and a > 0:
        q += 1
    return q


@internal
@pure
def _mul_div(x: uint256, y: uint256, d: uint256, roundup: bool) -> uint256:
    """
    @dev x * y / d for unsigned values, rounded up when `roundup`.
    """
    p: uint256 = x * y
    q: uint256 = p // d
    if roundup and p % d != 0:
        q += 1
    return q
