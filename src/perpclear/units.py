"""The contracts' constants, once, for the Python side.

Every name here copies a constant of a Vyper source, named in its comment;
``tests/unit/test_constants.py`` reads those sources and fails when a copy
drifts. Python code imports these names from here (``perpclear.model``
re-exports the ones the model uses).
"""

from fractions import Fraction

# modules/constants.vy
WAD = 10**18  # one whole contract (sizes have 18 decimals); also the WAD fixed point
BPS = 10_000  # 100 % in basis points
FUNDING_SCALE = 10**36  # funding and EQUITY side indexes: collateral units * WAD**2 per contract
MAX_MARKETS = 8
MAX_SIZE = 10**30  # the largest fill size and open-interest cap (base units)
MAX_PRICE = 10**30  # the largest fill price (collateral units per contract)
MAX_INDEX = 10**48  # OPEN_INTEREST never moves a side index beyond +-MAX_INDEX
POLICY_EQUITY, POLICY_OPEN_INTEREST, POLICY_ADL, POLICY_PROFIT = 1, 2, 3, 4
POLICIES = {  # by name
    "EQUITY": POLICY_EQUITY, "OPEN_INTEREST": POLICY_OPEN_INTEREST, "ADL": POLICY_ADL, "PROFIT": POLICY_PROFIT,
}

# modules/loss_equity.vy: the fixed point of r and of K's mantissa (1.0), the
# factor K's mantissa is rescaled by, the mantissa's width in the K word, and
# the most one socialization takes (MAX_RATE, 99.9999 %, as a fraction of 1.0).
EQUITY_SCALE = 10**36
EQUITY_RESCALE = 10**6
EQUITY_MANTISSA_BITS = 144
MAX_RATE = 1 - Fraction(1, 1_000_000)


def _split(word: int) -> tuple[int, int]:
    """A K word's mantissa and number of rescales."""
    return word & ((1 << EQUITY_MANTISSA_BITS) - 1), word >> EQUITY_MANTISSA_BITS


def equity_scale(word: int) -> Fraction:
    """K from the clearing house's K word (``scale()``, ``loss_snapshot(a)``, events)."""
    mantissa, shifts = _split(word)
    return Fraction(mantissa, EQUITY_SCALE * EQUITY_RESCALE**shifts)


def equity_scale_after(word: int, rate: int) -> int:
    """The K word after a socialization at ``rate`` (in EQUITY_SCALE), as the contract computes it."""
    mantissa, shifts = _split(word)
    after = mantissa * (EQUITY_SCALE - rate) // EQUITY_SCALE
    if after < EQUITY_SCALE:  # rescaled before the floor
        after, shifts = mantissa * EQUITY_RESCALE * (EQUITY_SCALE - rate) // EQUITY_SCALE, shifts + 1
    mantissa = after
    return shifts << EQUITY_MANTISSA_BITS | mantissa


# Timelock.vy: the longest governance delay (MAX_DELAY)
MAX_TIMELOCK_DELAY = 30 * 86_400

# ClearingHouse.vy: fees owed to each recipient stay below it (FEE_BITS = 128)
FEE_BOUND = 2**128

# Deleverager.vy: candidates per deleverage call and per clawback call, and
# the codes of CandidateSkipped.reason
MAX_CANDIDATES = 50
MAX_PAYERS = 1_000
ADL_SKIP = {1: "SIDE", 2: "PROFIT", 3: "RANK", 4: "EQUITY", 5: "ORDER"}  # SKIP_SIDE, SKIP_PROFIT, ...

# ClearingLens.vy: accounts per `equities` / `account_states` call (MAX_ACCOUNTS)
LENS_MAX_ACCOUNTS = 1_000

# Keeper.vy: targets per `run` (MAX_TARGETS)
KEEPER_MAX_TARGETS = 50
