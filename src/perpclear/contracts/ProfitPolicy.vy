# pragma version 0.4.3
# pragma nonreentrancy on
# pragma optimize gas
"""
@title perpclear PROFIT loss policy: the accounts in profit pay, pro rata
@license MIT
@notice PROFIT (`clawback`): the residual R = -e - I of a bankrupt account
        (its equity e < 0 beyond the insurance I the vault can pay it) is charged to the accounts whose position in the market
        is in profit, pro rata to that profit, up to all of it:
            profit_i = min(pnl_i, equity_i)   (pnl at the mark, funding included)
            P        = sum of profit_i over the candidates in profit
            charge_i = profit_i                          when P <= R
            charge_i = floor(R * S_i / P) - floor(R * S_(i-1) / P)   otherwise,
        S_i the running sum of profit in the candidates' order: each charge is
        within one unit of R * profit_i / P and they add up to R exactly.
        Candidates are passed in ascending address order (no one counted
        twice); the clearing house takes each charge out of the payer's
        profit (its cost basis rises by it) and checks its bounds.
        Registered with the clearing house as the contract of the PROFIT
        policy id (`set_loss_policy_contract`), it is the one caller of
        `adl_fill` in PROFIT markets; it places a residual before the
        take-over, so at the waterfall `place` answers (0, 0)
        (interfaces/ILossPolicy.vyi). What it shares with ADL
        (Deleverager.vy) is modules/keeper_fed.vy.
"""

from .modules import constants as c
from .modules import keeper_fed as fed
from .modules import math
from interfaces import IClearingHouse
from interfaces import ILossPolicy

implements: ILossPolicy
initializes: fed

exports: (fed.clearing_house, fed.oracle, fed.insurance_vault, fed.place)


# Accounts per clawback call: bounds its loops (the block's gas limit binds first).
MAX_PAYERS: constant(uint256) = 1_000


event ProfitCharged:
    account: indexed(address)  # the bankrupt account
    payer: indexed(address)
    market: indexed(uint256)
    amount: uint256  # moved from the payer to the bankrupt account
    profit: uint256  # the payer's profit counted, min(pnl, equity)


event ClawbackRun:
    account: indexed(address)
    market: indexed(uint256)
    equity: int256  # of the bankrupt account, before
    insurance: uint256  # I, what the vault can still cover
    residual: uint256  # R
    profit: uint256  # P, the profit of the candidates counted
    charged: uint256  # min(R, P): what the payers paid
    mark: uint256


@deploy
def __init__(_clearing_house: IClearingHouse):
    """
    @param _clearing_house The clearing house; its owner must then register
           this contract for POLICY_PROFIT (`set_loss_policy_contract`).
    """
    fed.__init__(_clearing_house)


@external
def clawback(account: address, market: uint256, candidates: DynArray[address, MAX_PAYERS]) -> uint256:
    """
    @notice Keepers only, PROFIT markets: charges the bankrupt `account`'s
            residual to the candidates in profit in `market`, pro rata to
            their profit and at most all of it (see the contract's notes);
            each charge comes out of the payer's profit (its cost basis).
            Its position stays open for a keeper to take over at the mark
            (the keeper contract's `clawback` does both in one transaction);
            the waterfall then draws what is left from the insurance vault,
            and what the candidates' profit could not cover becomes bad debt.
    @param candidates The accounts in profit in `market`, in ascending
            address order (any other is skipped with its reason).
    @return What the payers were charged in all.
    """
    size: int256 = 0
    equity: int256 = 0
    insurance: uint256 = 0
    residual: uint256 = 0
    state: IClearingHouse.MarketState = empty(IClearingHouse.MarketState)
    size, equity, insurance, residual, state = fed._bankrupt(account, market, c.POLICY_PROFIT)
    assert len(candidates) > 0, "adl: no candidates"
    mark: uint256 = staticcall fed.oracle.price(market)

    payers: DynArray[address, MAX_PAYERS] = []
    profits: DynArray[uint256, MAX_PAYERS] = []
    total: uint256 = 0
    previous: uint256 = 0
    for candidate: address in candidates:
        reason: uint8 = 0
        position: IClearingHouse.Position = staticcall fed.clearing_house.positions(candidate, market)
        if convert(candidate, uint256) <= previous:
            reason = fed.SKIP_ORDER
        elif candidate == account or position.size == 0:
            reason = fed.SKIP_SIDE
        else:
            previous = convert(candidate, uint256)
            profit: int256 = min(
                fed._pnl(position, mark, state),
                (staticcall fed.clearing_house.health(candidate)).equity,
            )
            if profit <= 0:
                reason = fed.SKIP_PROFIT
            else:
                payers.append(candidate)
                profits.append(convert(profit, uint256))
                total += convert(profit, uint256)
        if reason != 0:
            log fed.CandidateSkipped(account=account, counterparty=candidate, market=market, reason=reason)

    charged: uint256 = 0
    running: uint256 = 0
    for i: uint256 in range(len(payers), bound=MAX_PAYERS):
        amount: uint256 = profits[i]
        if total > residual:
            running += profits[i]
            amount = math._mul_div(residual, running, total, False) - charged
        if amount > 0:
            extcall fed.clearing_house.adl_fill(account, payers[i], market, amount)
            charged += amount
        # Every payer counted in P is logged, a share floored to 0 too: the audit replays the run from the logs.
        log ProfitCharged(account=account, payer=payers[i], market=market, amount=amount, profit=profits[i])
    log ClawbackRun(
        account=account, market=market, equity=equity, insurance=insurance, residual=residual,
        profit=total, charged=charged, mark=mark,
    )
    return charged
