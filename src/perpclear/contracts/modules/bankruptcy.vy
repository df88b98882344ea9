# pragma version 0.4.3
"""
@title perpclear bankruptcy price (ADL)
@license MIT
@notice The price at which a bankrupt position closes against ADL
        counterparties; the deleverager checks its candidates with it and the
        clearing house computes it again before booking any fill, so no
        deleverager can book at another price. For a position s of an
        account with equity e < 0 at mark p, with insurance I available:
            R   = -e - I          (> 0: what the vault cannot cover)
            gap = ceil(R * WAD / |s|)
            p_b = p + gap  when s is long (its buyers pay more than the mark)
            p_b = p - gap  when s is short (floored at 1)
"""

from . import constants as c
from . import math


@internal
@pure
def _gap(residual: uint256, size: int256, mark: uint256) -> uint256:
    """
    @dev |p_b - p| for a residual R > 0 on a position s != 0.
    """
    gap: uint256 = math._mul_div(residual, c.WAD, convert(abs(size), uint256), True)
    if size < 0:
        gap = min(gap, mark - 1)
    return gap


@internal
@pure
def _price(residual: uint256, size: int256, mark: uint256) -> uint256:
    """
    @dev p_b (see the module docstring).
    """
    gap: uint256 = self._gap(residual, size, mark)
    if size > 0:
        return mark + gap
    return mark - gap
