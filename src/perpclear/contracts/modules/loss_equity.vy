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
        updates K <- K * (1 - r), G <- G * (1 - r) and, per market side,
        A <- A * (1 - r) + r * q with q = mark * WAD - funding index of that
        side. The sum of equity is
            D = G + sum over markets of OI * ((q_L - A_L) - (q_S - A_S)) / WAD**2
        where G = sum of X * K / k over accounts, kept by `_add_basis`.

        K never floors. It is stored as one word: a mantissa in
        [SCALE, SCALE * RESCALE) and a shift n, K = mantissa / SCALE / RESCALE**n.
        When a socialization takes the mantissa below SCALE it is multiplied
        by RESCALE (one step always suffices: 1 - r >= 1 / RESCALE) and n
        grows by one, so K keeps 36 significant digits after any number of
        socializations (Liquity's stability pool rescales P the same way;
        here the product is rescaled before it is floored, so a large rate
        loses no digit either).
"""

from . import constants as c
from . import math

# Fixed point of r and of K's mantissa: 1.0 = 10**36, so that a charge on an
# account of 10**30 units (10**12 tokens of 18 decimals) is exact to well
# under one unit through 10,000 socializations (docs/loss-policies.md).
SCALE: constant(uint256) = 10**36
SCALE_INT: constant(int256) = 10**36
WAD2: constant(int256) = 10**36
# K's mantissa is multiplied by RESCALE when it falls below SCALE.
RESCALE: constant(uint256) = 10**6
# The most a single socialization may take: 99.9999 % of all equity, so that
# one rescale always brings the mantissa back above SCALE.
MAX_RATE: constant(uint256) = SCALE - SCALE // RESCALE
# The K word: the mantissa in its low MANTISSA_BITS (it is < 10**42 < 2**144),
# the shift above it. Accounts snapshot the whole word.
MANTISSA_BITS: constant(uint256) = 144
MANTISSA: constant(uint256) = (1 << MANTISSA_BITS) - 1
# G's fixed point: collateral units * 10**18.
G_UNIT: constant(int256) = 10**18

# K, as a word: shift << MANTISSA_BITS | mantissa (see the notice).
scale: public(uint256)
# A per market and side (True = long), collateral units * WAD per contract.
side_index: public(HashMap[uint256, HashMap[bool, int256]])
# G: sum over accounts of X * K / k, in collateral units * G_UNIT.
basis: public(int256)


@deploy
def __init__():
    self.scale = SCALE


@internal
def _add_basis(delta_x: int256):
    """
    @dev Adds an account's change of X (collateral units, account settled to
         the current K) to G.
    """
    self.basis += delta_x * G_UNIT


@internal
@pure
def _mul_scale(x: int256, f: uint256) -> int256:
    """
    @dev floor(x * f / SCALE) for any x and 0 <= f <= SCALE, without
         overflow: x = x1 * SCALE + x0 with 0 <= x0 < SCALE.
    """
    x1: int256 = math._div_floor(x, SCALE_INT)
    x0: int256 = x - x1 * SCALE_INT
    k: int256 = convert(f, int256)
    return x1 * k + x0 * k // SCALE_INT


@internal
@pure
def _fraction(a: uint256, b: uint256, roundup: bool) -> uint256:
    """
    @dev a * SCALE / b in two steps of 10**18 (exact; a and b below 10**58),
         rounded up when `roundup`.
    """
    t: uint256 = a * 10**18
    return (t // b) * 10**18 + math._mul_div(t % b, 10**18, b, roundup)


@internal
@view
def _settled_collateral(x_w2: int256, k_snapshot: uint256, tail_w2: int256) -> int256:
    """
    @dev Collateral after the pending socializations, floored.
    @param x_w2 X * WAD**2 of the account at its snapshot.
    @param tail_w2 sum(o) * WAD**2 - sum(s * (f + A)) at the current A.
    """
    k: uint256 = self.scale
    gap: uint256 = (k >> MANTISSA_BITS) - (k_snapshot >> MANTISSA_BITS)
    ratio: uint256 = 0  # K / k in SCALE, rounded down; below 10**-42 it is 0
    if gap < 7:
        ratio = self._fraction(k & MANTISSA, k_snapshot & MANTISSA, False) // pow_mod256(RESCALE, gap)
    return math._div_floor(self._mul_scale(x_w2, ratio) + tail_w2, WAD2)


@internal
@view
def _total_equity(basis_correction: int256) -> int256:
    """
    @dev D = G + the open-interest correction (collateral units, floored).
    """
    return math._div_floor(self.basis, G_UNIT) + basis_correction


@internal
@pure
def _rate(residual: uint256, equity: int256) -> uint256:
    """
    @dev r = ceil((R + 1) * SCALE / D), at most MAX_RATE; 0 when D <= 0.
    """
    if equity <= 0:
        return 0
    total: uint256 = convert(equity, uint256)
    if residual >= total:
        return MAX_RATE
    return min(self._fraction(residual + 1, total, True), MAX_RATE)


@internal
def _apply_rate(
    rate: uint256,
    markets: DynArray[uint256, c.MAX_MARKETS],
    q_long: int256[c.MAX_MARKETS],
    q_short: int256[c.MAX_MARKETS],
):
    """
    @dev K <- K * (1 - r) (rescaled when its mantissa falls below SCALE),
         G <- G * (1 - r), and A <- A + r * (q - A) for both sides of every
         market with open positions (a market without any has no account
         whose charge depends on its A: new positions snapshot A when they
         open). Every product is floored.
    """
    keep: uint256 = SCALE - rate
    word: uint256 = self.scale
    before: int256 = convert(word & MANTISSA, int256)
    mantissa: uint256 = convert(self._mul_scale(before, keep), uint256)
    shifts: uint256 = word >> MANTISSA_BITS
    if mantissa < SCALE:
        # rescaled before the floor, so that no digit is lost
        mantissa = convert(self._mul_scale(before * convert(RESCALE, int256), keep), uint256)
        shifts += 1
    self.scale = shifts << MANTISSA_BITS | mantissa
    self.basis = self._mul_scale(self.basis, keep)
    for m: uint256 in markets:
        a: int256 = self.side_index[m][True]
        self.side_index[m][True] = a + self._mul_scale(q_long[m] - a, rate)
        a = self.side_index[m][False]
        self.side_index[m][False] = a + self._mul_scale(q_short[m] - a, rate)
