# pragma version 0.4.3
"""
@title perpclear precision and limits
@license MIT
@notice Every scale used by the clearing contracts lives here.
        Amounts of collateral are in the token's smallest unit. Sizes are signed
        base amounts with 18 decimals (10**18 = one whole contract). Prices are
        collateral units per one whole contract. Ratios are basis points
        (10_000 = 100%). Funding rates are WAD fractions of the mark per second.
"""

# 10**18: one whole contract, and the scale of funding rates (100% = 10**18).
WAD: constant(uint256) = 10**18
WAD_INT: constant(int256) = 10**18

# Basis points: 100% = 10_000.
BPS: constant(uint256) = 10_000

# Funding index scale: index units are collateral units * WAD per whole contract,
# so the owed amount of a position is size * delta_index / FUNDING_SCALE.
FUNDING_SCALE: constant(int256) = 10**36

# Markets per clearing house (every cross-margin loop is bounded by this).
MAX_MARKETS: constant(uint256) = 8

# Upper bounds that keep every product of size, price and index far from 2**255.
MAX_SIZE: constant(uint256) = 10**30
MAX_PRICE: constant(uint256) = 10**30
# Side indexes move within +-MAX_INDEX (MAX_PRICE * WAD) through loss charges,
# so that the EQUITY policy's A * (1 - r) + r * q stays below 2**255.
MAX_INDEX: constant(int256) = 10**48

# ADL fills per call (the deleverager's candidates per call).
MAX_ADL_FILLS: constant(uint256) = 50

# Loss policies for the residual that the insurance vault does not cover.
POLICY_EQUITY: constant(uint8) = 1
POLICY_OPEN_INTEREST: constant(uint8) = 2
POLICY_ADL: constant(uint8) = 3
POLICY_PROFIT: constant(uint8) = 4
