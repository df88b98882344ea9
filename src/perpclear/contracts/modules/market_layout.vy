# pragma version ~=0.4.3
"""
@title perpclear market words
@license MIT
@notice How the clearing house stores a market: two words a fill reads
        once each, plus one word per side for the funding index and one for
        the insurance draw cap (read only by bankruptcies).
        Parameters word (fields at the widths their checks allow, see
        `ClearingHouse._check_params`): the seven basis-point fields
        (<= 10_000 < 2**14 each), max_funding_rate (<= WAD / 3_600 < 2**49)
        and oi_cap (<= MAX_SIZE = 10**30 < 2**100): 247 bits.
        State word: the long open interest (104 bits: a fill that raises it
        is capped by oi_cap <= MAX_SIZE, checked once both sides are booked,
        so even mid-fill it stays below 2 * MAX_SIZE < 2**101),
        the last accrual time (48 bits), the funding rate (56 bits, two's
        complement; |rate| <= max_funding_rate < 2**49), the reduce-only
        flag and the loss policy (8 bits).
        The clearing house packs and reads the words; the lens and the
        deleverager unpack what `ClearingHouse.market_words` returns here.
"""

from interfaces import IClearingHouse

# Parameters word: offset of each field; widths BPS_BITS, RATE_BITS, CAP_BITS.
IMR: constant(uint256) = 0
MMR: constant(uint256) = 14
PENALTY: constant(uint256) = 28
LIQUIDATOR_SHARE: constant(uint256) = 42
MAKER_FEE: constant(uint256) = 56
TAKER_FEE: constant(uint256) = 70
FEE_INSURANCE_SHARE: constant(uint256) = 84
MAX_FUNDING_RATE: constant(uint256) = 98
OI_CAP: constant(uint256) = 147
BPS_BITS: constant(uint256) = 14
RATE_BITS: constant(uint256) = 49
CAP_BITS: constant(uint256) = 100

# State word: offset of each field, and widths.
OPEN_INTEREST: constant(uint256) = 0
OI_BITS: constant(uint256) = 104
LAST_ACCRUAL: constant(uint256) = 104
TIME_BITS: constant(uint256) = 48
FUNDING_RATE: constant(uint256) = 152
FUNDING_RATE_BITS: constant(uint256) = 56
REDUCE_ONLY: constant(uint256) = 208
LOSS_POLICY: constant(uint256) = 209
POLICY_BITS: constant(uint256) = 8


@internal
@pure
def _field(word: uint256, at: uint256, bits: uint256) -> uint256:
    return (word >> at) & ((1 << bits) - 1)


@internal
@pure
def _signed(word: uint256, at: uint256, bits: uint256) -> int256:
    # The two's complement field of `bits` bits at bit `at`, sign-extended.
    return convert(convert(word << (256 - at - bits), bytes32), int256) >> (256 - bits)


@internal
@pure
def _unsigned(field: int256, bits: uint256) -> uint256:
    # `field` in two's complement over `bits` bits (it must fit them).
    return convert(convert(field, bytes32), uint256) & ((1 << bits) - 1)


@internal
@pure
def _pack_params(p: IClearingHouse.MarketParams) -> uint256:
    # Each field must be within its width (the clearing house checks them).
    return (
        p.imr_bps << IMR
        | p.mmr_bps << MMR
        | p.penalty_bps << PENALTY
        | p.liquidator_share_bps << LIQUIDATOR_SHARE
        | p.maker_fee_bps << MAKER_FEE
        | p.taker_fee_bps << TAKER_FEE
        | p.fee_insurance_share_bps << FEE_INSURANCE_SHARE
        | p.max_funding_rate << MAX_FUNDING_RATE
        | p.oi_cap << OI_CAP
    )


@internal
@pure
def _params(word: uint256, max_insurance_draw: uint256) -> IClearingHouse.MarketParams:
    return IClearingHouse.MarketParams(
        imr_bps=self._field(word, IMR, BPS_BITS),
        mmr_bps=self._field(word, MMR, BPS_BITS),
        penalty_bps=self._field(word, PENALTY, BPS_BITS),
        liquidator_share_bps=self._field(word, LIQUIDATOR_SHARE, BPS_BITS),
        maker_fee_bps=self._field(word, MAKER_FEE, BPS_BITS),
        taker_fee_bps=self._field(word, TAKER_FEE, BPS_BITS),
        fee_insurance_share_bps=self._field(word, FEE_INSURANCE_SHARE, BPS_BITS),
        oi_cap=self._field(word, OI_CAP, CAP_BITS),
        max_funding_rate=self._field(word, MAX_FUNDING_RATE, RATE_BITS),
        max_insurance_draw=max_insurance_draw,
    )


@internal
@pure
def _state(word: uint256, long_index: int256, short_index: int256) -> IClearingHouse.MarketState:
    return IClearingHouse.MarketState(
        funding_rate=self._signed(word, FUNDING_RATE, FUNDING_RATE_BITS),
        long_index=long_index,
        short_index=short_index,
        last_accrual=self._field(word, LAST_ACCRUAL, TIME_BITS),
        long_open_interest=self._field(word, OPEN_INTEREST, OI_BITS),
        reduce_only=self._field(word, REDUCE_ONLY, 1) != 0,
        loss_policy=convert(self._field(word, LOSS_POLICY, POLICY_BITS), uint8),
    )


@internal
@view
def _read_params(clearing_house: IClearingHouse, market: uint256) -> IClearingHouse.MarketParams:
    words: (uint256, uint256, uint256, int256, int256) = staticcall clearing_house.market_words(market)
    return self._params(words[0], words[1])


@internal
@view
def _read_state(clearing_house: IClearingHouse, market: uint256) -> IClearingHouse.MarketState:
    words: (uint256, uint256, uint256, int256, int256) = staticcall clearing_house.market_words(market)
    return self._state(words[2], words[3], words[4])
