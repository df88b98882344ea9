# pragma version ~=0.4.3
"""
@title perpclear keeper-fed loss policies: what ADL and PROFIT share
@license MIT
@notice ADL (Deleverager.vy) and PROFIT (ProfitPolicy.vy) place a bankrupt
        account's residual before its position is taken over, from a keeper's
        list of counterparties, through the clearing house's `adl_fill`. They
        share their answer at the waterfall (`place`, exported by both), the
        checks on the bankrupt account (`_bankrupt`), a position's PnL as the
        clearing house books it (`_pnl`) and the reasons a candidate is
        skipped, never reverted on:
          1 SIDE    no position on the side it must be (ADL: opposite the
                    bankrupt position; PROFIT: any), or the bankrupt account
          2 PROFIT  not in profit (funding included)
          3 RANK    ADL: its rank above the previous accepted candidate's
          4 EQUITY  ADL: its equity cannot pay the gap to the bankruptcy price
          5 ORDER   PROFIT: its address not above the previous candidate's
"""

from . import constants as c
from . import funding
from . import market_layout as layout
from . import math
from interfaces import IClearingHouse
from interfaces import IInsuranceVault
from interfaces import ILossPolicy
from interfaces import IPriceOracle

SKIP_SIDE: constant(uint8) = 1
SKIP_PROFIT: constant(uint8) = 2
SKIP_RANK: constant(uint8) = 3
SKIP_EQUITY: constant(uint8) = 4
SKIP_ORDER: constant(uint8) = 5

clearing_house: public(immutable(IClearingHouse))
oracle: public(immutable(IPriceOracle))
insurance_vault: public(immutable(IInsuranceVault))


event CandidateSkipped:
    account: indexed(address)
    counterparty: indexed(address)
    market: indexed(uint256)
    reason: uint8


@deploy
def __init__(_clearing_house: IClearingHouse):
    clearing_house = _clearing_house
    oracle = IPriceOracle(staticcall _clearing_house.oracle())
    insurance_vault = IInsuranceVault(staticcall _clearing_house.insurance_vault())


@view
@external
def place(
    account: address, market: uint256, residual: uint256, was_long: bool, mark: uint256, open_interest: uint256
) -> ILossPolicy.Placement:
    """
    @notice ILossPolicy: a keeper-fed policy places a residual before the
            take-over (ADL's `deleverage`, PROFIT's `clawback`); at the
            waterfall nothing is left to place, so what the keepers could
            not place stays bad debt.
    """
    return empty(ILossPolicy.Placement)


@internal
@view
def _pnl(position: IClearingHouse.Position, mark: uint256, state: IClearingHouse.MarketState) -> int256:
    """
    @dev Unrealised PnL at `mark`, pending funding included, as the clearing
         house books it: floor(size * mark / WAD) - open notional - funding owed.
    """
    value: int256 = math._div_floor(position.size * convert(mark, int256), c.WAD_INT)
    return value - position.open_notional - funding._pending_in(state, position, mark)


@internal
@view
def _bankrupt(
    account: address, market: uint256, policy: uint8
) -> (int256, int256, uint256, uint256, IClearingHouse.MarketState):
    """
    @dev Checks that `account` is bankrupt beyond the insurance vault with
         its last position in `market`, a market of `policy`.
    @return Its size there, its equity e < 0, the insurance I the vault can
         pay it, the residual R = -e - I > 0 and the market's state (its
         words are read once per call).
    """
    assert staticcall clearing_house.is_keeper(msg.sender), "adl: not keeper"
    assert market < staticcall clearing_house.market_count(), "adl: unknown market"
    words: (uint256, uint256, uint256, int256, int256) = staticcall clearing_house.market_words(market)
    state: IClearingHouse.MarketState = layout._state(words[2], words[3], words[4])
    assert state.loss_policy == policy, "adl: wrong loss policy"
    size: int256 = (staticcall clearing_house.positions(account, market)).size
    assert size != 0, "adl: no position"
    # One word whatever the number of markets listed: its open markets.
    assert staticcall clearing_house.open_markets(account) == 1 << market, "adl: other positions first"
    equity: int256 = (staticcall clearing_house.health(account)).equity
    assert equity < 0, "adl: not bankrupt"
    insurance: uint256 = staticcall insurance_vault.idle_assets()
    cap: uint256 = words[1]  # the market's insurance draw cap
    if cap > 0:
        insurance = min(insurance, cap)
    deficit: uint256 = convert(-equity, uint256)
    assert deficit > insurance, "adl: insurance covers, liquidate"
    return size, equity, insurance, deficit - insurance, state
