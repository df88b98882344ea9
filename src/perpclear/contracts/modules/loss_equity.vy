# pragma version 0.4.3
"""
@title EQUITY loss policy: pro rata by equity, in constant gas
@license MIT
@notice A residual R is charged to every account in proportion to its equity
        at the current marks: each equity e_i becomes (1 - r) * e_i with
        r = (R + 1) / D, where D is the sum of all accounts' equity (negative
        ones included), so the charges add up to R + 1 >= R. See
        docs/loss-policies.md for the definitions and the proof.

        Representation. An account's stored state is its collateral c, and
        per market its size s, open notional o, funding snapshot f and a
        snapshot a of this module's side index A (taken when it was last
        settled), with the scale snapshot k of K. With
            X = c - sum(o) + sum(s * (f + a)) / WAD**2
        its collateral after every socialization since then is
            c' = X * K / k + sum(o) - sum(s * (f + A)) / WAD**2
        (one formula however many socializations happened: settlement is
        O(markets), never O(socializations)). A socialization at rate r
        updates K <- K * (1 - r) and, per market side, A <- A * (1 - r) + r * q
        with q = mark * WAD - funding index of that side. The sum of equity is
            D = K * H / SCALE + sum over markets of OI * ((q_L - A_L) - (q_S - A_S)) / WAD**2
        where H = sum of X / k over accounts, kept by `_add_basis`.
"""

from . import constants as c
from . import math

# Fixed point of K, of r and of H: 1.0 = 10**27. Not more: A * (1 - r) must
# stay below 2**255 for side indexes up to MAX_PRICE * WAD (10**48).
SCALE: constant(uint256) = 10**27
SCALE_INT: constant(int256) = 10**27
WAD2: constant(int256) = 10**36
# K never goes below this (a socialization that would is capped and the rest
# stays as bad debt), so K / k keeps at least twelve significant digits.
MIN_SCALE: constant(uint256) = 10**15
# The most a single socialization may take: 99.9999 % of all equity.
MAX_RATE: constant(uint256) = SCALE - SCALE // 1_000_000

# K: product of (1 - r) over every socialization so far, SCALE = 1.0.
scale: public(uint256)
# A per market and side (True = long), collateral units * WAD per contract.
side_index: public(HashMap[uint256, HashMap[bool, int256]])
# H: sum over accounts of X / k, in collateral units * SCALE.
basis: public(int256)


@deploy
def __init__():
    self.scale = SCALE


@internal
def _add_basis(delta_x: int256):
    """
    @dev Adds an account's change of X (collateral units, account settled to
         the current K) to H, rounded down so that D never exceeds the truth.
    """
    if delta_x == 0:
        return
    self.basis += math._div_floor(delta_x * SCALE_INT, convert(self.scale, int256))


@internal
@view
def _settled_collateral(x_w2: int256, k_snapshot: uint256, tail_w2: int256) -> (int256, int256):
    """
    @dev Collateral after the pending socializations, floored, and the
         remainder of the floor (in WAD**2 units) for the basis correction.
    @param x_w2 X * WAD**2 of the account at its snapshot.
    @param tail_w2 sum(o) * WAD**2 - sum(s * (f + A)) at the current A.
    """
    k: int256 = convert(self.scale, int256)
    k_snap: int256 = convert(k_snapshot, int256)
    # floor(x_w2 * k / k_snap) without overflow: k <= k_snap.
    q: int256 = math._div_floor(x_w2, k_snap)
    rem: int256 = x_w2 - q * k_snap
    scaled: int256 = q * k + (rem * k) // k_snap
    total: int256 = scaled + tail_w2
    collateral: int256 = math._div_floor(total, WAD2)
    return collateral, total - collateral * WAD2


@internal
@view
def _total_equity(basis_correction: int256) -> int256:
    """
    @dev D = K * H / SCALE + the open-interest correction (collateral units).
    """
    return (
        math._div_floor(convert(self.scale, int256) * self.basis, SCALE_INT)
        + basis_correction
    )


@internal
@view
def _rate(residual: uint256, equity: int256) -> uint256:
    """
    @dev r = ceil((R + 1) * SCALE / D), at most MAX_RATE and never so large
         that K would fall below MIN_SCALE; 0 when D <= 0.
    """
    if equity <= 0:
        return 0
    rate: uint256 = math._mul_div(residual + 1, SCALE, convert(equity, uint256), True)
    floor_rate: uint256 = SCALE - math._mul_div(MIN_SCALE, SCALE, self.scale, True)
    return min(rate, min(MAX_RATE, floor_rate))


@internal
def _apply_rate(
    rate: uint256,
    markets: DynArray[uint256, c.MAX_MARKETS],
    q_long: int256[c.MAX_MARKETS],
    q_short: int256[c.MAX_MARKETS],
):
    """
    @dev K <- K * (1 - r), A <- A * (1 - r) + r * q for both sides of every
         market with open positions (a market without any has no account whose
         charge depends on its A: new positions snapshot A when they open).
    """
    keep: uint256 = SCALE - rate
    self.scale = self.scale * keep // SCALE
    r: int256 = convert(rate, int256)
    k: int256 = convert(keep, int256)
    for m: uint256 in markets:
        self.side_index[m][True] = math._div_floor(
            self.side_index[m][True] * k + r * q_long[m], SCALE_INT
        )
        self.side_index[m][False] = math._div_floor(
            self.side_index[m][False] * k + r * q_short[m], SCALE_INT
        )
