# pragma version 0.4.3
# pragma optimize codesize
# pragma experimental-codegen
"""
@title perpclear clearing house
@license MIT
@notice Holds traders' margin, settles matched EIP-712 orders, accrues funding,
        liquidates under-margined accounts and runs the loss waterfall:
        the bankrupt account's collateral, then the insurance vault, then the
        market's loss policy for the residual.
        Ledger identity, true after every transaction, to the unit:
            token.balanceOf(self) + bad_debt + loss_receivable
              == total_collateral - total_open_notional + funding_pool
                 + protocol_fees + insurance_fees
@custom:reentrancy Every entry point that calls out (token, oracle, vault)
        holds the reentrancy lock. Views and owner-only setters do not: this
        contract calls out only to its collateral token (an ERC-20 without
        transfer hooks), its oracle (static calls) and its insurance vault,
        none of which hands control to anyone else mid-transaction, so no
        view can be read half-way through an update (room under EIP-170).
@custom:kill Set every market to reduce-only with `set_reduce_only`: trades may
        then only shrink positions, while deposits, withdrawals above initial
        margin, funding and liquidations keep working so that everyone can exit.
"""

from ethereum.ercs import IERC20
from interfaces import IClearingHouse
from interfaces import IInsuranceVault
from interfaces import IPriceOracle

from .modules import constants as c
from .modules import math
from .modules import loss_equity
from .modules import bankruptcy
from .modules import liquidation
from .modules import valuation
from .modules import funding
from .modules import market_layout as layout
from .modules import ownership
from .modules import governed

implements: IClearingHouse
initializes: loss_equity
initializes: ownership
initializes: governed

exports: (
    loss_equity.scale,
    loss_equity.side_index,
    loss_equity.basis,
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
    governed.timelock,
)


# A position as stored: size and open notional share one word (see _pack).
struct StoredPosition:
    base: uint256
    funding_index: int256
    equity_index: int256


token: public(immutable(IERC20))
oracle: public(immutable(IPriceOracle))
insurance_vault: public(immutable(address))
fee_recipient: public(address)
# The one contract allowed to book fills (OrderBook.vy checks the signed orders).
order_book: public(address)
is_keeper: public(HashMap[address, bool])
# The contract of each loss policy id (interfaces/ILossPolicy.vyi): it
# places its markets' residuals at the waterfall, and for the keeper-fed
# policies (ADL, PROFIT) it is the one caller of `adl_fill`.
loss_policies: public(HashMap[uint8, address])
# Gas a policy's `place` gets: a static call that computes a split. No
# caller can starve it to turn a residual into bad debt: a call given less
# (EIP-150 passes on 63/64 of what is left) leaves this contract at most
# POLICY_GAS / 64 = 781 gas, less than recording the bad debt costs.
POLICY_GAS: constant(uint256) = 50_000

# The number of listed markets (low bits) and the set of markets with open
# interest (bit OPEN_BIT + m): one read gives both, and market-wide loops
# visit only markets with open interest.
market_word: uint256
# A market in words (modules/market_layout.vy): its parameters and its
# state (open interest, last accrual, funding rate, flags), one word each,
# read once per transaction; the insurance draw cap, and the funding index
# of each side (True = long).
params_word: HashMap[uint256, uint256]
state_word: HashMap[uint256, uint256]
max_insurance_draw: HashMap[uint256, uint256]
funding_index: HashMap[uint256, HashMap[bool, int256]]

stored_positions: HashMap[address, HashMap[uint256, StoredPosition]]
# The packed base word of a position: bit 0 set once the position was ever
# written (a closed position keeps it, so opening it again writes a non-zero
# word: 2,900 gas, not 20,000), then the size and the open notional in two's
# complement, in 104 bits from bit 1 and 151 bits from bit 105.
# |size| <= MAX_SIZE = 10**30 < 2**103 (the open-interest cap bounds every
# position) and |open notional| <= MAX_SIZE * MAX_PRICE / WAD = 10**42 < 2**150.
USED: constant(uint256) = 1
SIZE_AT: constant(uint256) = 1
SIZE_BITS: constant(uint256) = 104
NOTIONAL_AT: constant(uint256) = SIZE_AT + SIZE_BITS
SIZE_LIMIT: constant(int256) = 2**103
NOTIONAL_LIMIT: constant(int256) = 2**150
collateral: public(HashMap[address, int256])

# Aggregates of the ledger identity (see the contract docstring).
total_collateral: public(int256)
total_open_notional: public(int256)
funding_pool: public(int256)  # funding paid in minus funding paid out so far
# Fees owed, one word: the protocol's (low FEE_BITS) and the insurance
# vault's (high). Each stays below 2**128 units (3.4e20 whole tokens of 18
# decimals): a fill that would cross it reverts until `sweep_fees`, which
# anyone may call, pays them out.
fee_word: uint256
FEE_BITS: constant(uint256) = 128
FEE_MASK: constant(uint256) = (1 << FEE_BITS) - 1
bad_debt: public(uint256)  # residuals no one has been charged for yet
# Socialized losses booked but not yet settled into accounts' collateral
# (negative: the rounding surplus collected beyond the residuals).
loss_receivable: public(int256)
# ADL: the bankruptcy price of each account, fixed at its first fill in a
# transaction and cleared when the transaction ends.
adl_price: transient(HashMap[address, uint256])
# PROFIT: 1 + what a bankrupt account may still be paid in the transaction,
# its residual R taken at its first charge (0: not charged yet).
clawback_left: transient(HashMap[address, uint256])
# Per account, one word: the EQUITY scale word of K at its last settlement
# (low bits; 0: never settled; mantissa < 2**144 and shift below it, see
# modules/loss_equity.vy) and the set of markets where it has a position
# (bit OPEN_BIT + m, the top MAX_MARKETS bits): per-account loops never read
# an empty position.
account_word: HashMap[address, uint256]
OPEN_BIT: constant(uint256) = 256 - c.MAX_MARKETS
LOW_BITS: constant(uint256) = (1 << OPEN_BIT) - 1


# What the fill being booked changes in the ledger's aggregates:
# `_apply_fill` adds each side's change here and `_book` writes each
# aggregate once, then clears this. Every caller of `_apply_fill` calls
# `_book` before anything reads the aggregates (the tests' ledger check would
# see a change left here). Written side by side, a total that the fill leaves
# where it was (the open notional of a fill between two openings, of most ADL
# fills) would be set and reset, 20,000 gas that the EIP-3529 refund cap
# does not always give back.
struct Totals:
    collateral: int256  # realised PnL and fees
    open_notional: int256
    basis: int256  # the change of X (modules/loss_equity.vy)


fill_totals: transient(Totals)


event Deposited:
    account: indexed(address)
    amount: uint256
    collateral: int256


event Withdrawn:
    account: indexed(address)
    amount: uint256
    collateral: int256


event MarketAdded:
    market: indexed(uint256)
    loss_policy: uint8


event MarketParamsSet:
    market: indexed(uint256)
    params: IClearingHouse.MarketParams


event LossPolicySet:
    market: indexed(uint256)
    previous: uint8
    policy: uint8


event LossPolicyContractSet:
    loss_policy: indexed(uint8)
    policy: address


event ReduceOnlySet:
    market: indexed(uint256)
    reduce_only: bool


event KeeperSet:
    keeper: indexed(address)
    allowed: bool


event OrderBookSet:
    order_book: indexed(address)


event FeeRecipientSet:
    recipient: indexed(address)


event PositionChanged:
    account: indexed(address)
    market: indexed(uint256)
    size: int256
    open_notional: int256
    realized_pnl: int256


event FundingRateSet:
    market: indexed(uint256)
    rate: int256
    long_index: int256
    short_index: int256


event FundingAccrued:
    market: indexed(uint256)
    long_index: int256  # the sides differ once OPEN_INTEREST has charged one of them
    short_index: int256
    rate: int256
    price: uint256
    elapsed: uint256


event FundingSettled:
    account: indexed(address)
    market: indexed(uint256)
    amount: int256  # > 0 paid by the account, < 0 received


event PositionLiquidated:
    account: indexed(address)
    liquidator: indexed(address)
    market: indexed(uint256)
    size: int256  # signed size taken over by the liquidator
    price: uint256
    penalty: uint256
    liquidator_reward: uint256
    insurance_reward: uint256
    remaining_size: int256


event AccountBankrupt:
    account: indexed(address)
    market: indexed(uint256)
    deficit: uint256
    insurance_paid: uint256
    residual: uint256


event ResidualRecorded:
    account: indexed(address)
    market: indexed(uint256)
    loss_policy: uint8
    residual: uint256
    bad_debt: uint256


event LossSocialized:
    account: indexed(address)  # the bankrupt account
    market: indexed(uint256)
    loss_policy: uint8
    residual: uint256
    booked: uint256  # charged to accounts; residual - booked stays bad debt
    basis: int256  # EQUITY: D, the sum of equity; OPEN_INTEREST: the open interest
    rate: uint256  # EQUITY: r (1e36 = 100 %); OPEN_INTEREST: loss per contract (index units)
    index_before: int256  # EQUITY: the K word; OPEN_INTEREST: the charged side's funding index
    index_after: int256


event LossSettled:
    account: indexed(address)
    charge: uint256  # what the account paid
    # A negative share (the account's equity was negative) is never paid out:
    # it goes to the insurance fees, and what solvent accounts pay beyond the
    # residual ends in the insurance vault.
    to_insurance: uint256
    scale_before: uint256
    scale_after: uint256


event AdlSurplus:
    account: indexed(address)  # the bankrupt account, flat after ADL
    market: indexed(uint256)
    amount: uint256  # paid to the insurance vault


event FeesSwept:
    protocol_amount: uint256
    insurance_amount: uint256


@deploy
def __init__(
    _token: IERC20,
    _oracle: IPriceOracle,
    _insurance_vault: address,
    _fee_recipient: address,
    _timelock: address,
):
    """
    @param _token Collateral token (no fee-on-transfer, no rebasing).
    @param _oracle Price oracle with one mark price per market id.
    @param _insurance_vault ERC-4626 vault that covers deficits (`cover`).
    @param _fee_recipient Receiver of the protocol share of fees.
    @param _timelock The deployment's governance timelock (Timelock.vy).
    """
    assert _token.address != empty(address), "clearing: zero address"
    assert _oracle.address != empty(address), "clearing: zero address"
    assert _insurance_vault != empty(address), "clearing: zero address"
    assert _fee_recipient != empty(address), "clearing: zero address"
    token = _token
    oracle = _oracle
    insurance_vault = _insurance_vault
    self.fee_recipient = _fee_recipient
    ownership.__init__()
    governed.__init__(_timelock)
    loss_equity.__init__()


# ---------------------------------------------------------------- governance


@external
def set_order_book(book: address):
    """
    @notice Sets, once, the order book whose matched orders this contract books.
    """
    ownership._check_owner()
    assert book != empty(address), "clearing: zero address"
    assert self.order_book == empty(address), "clearing: order book set"
    self.order_book = book
    log OrderBookSet(order_book=book)


@external
def set_keeper(account: address, allowed: bool):
    """
    @notice Allows or revokes a keeper (funding rates, backstop liquidations).
    """
    ownership._check_owner()
    if allowed:
        governed._check(keccak256(slice(msg.data, 0, 68)))
    assert account != empty(address), "clearing: zero address"
    self.is_keeper[account] = allowed
    log KeeperSet(keeper=account, allowed=allowed)


@external
def set_loss_policy_contract(loss_policy: uint8, policy: address):
    """
    @notice Registers the contract of a loss policy id (ILossPolicy); zero
            unregisters it (its markets' residuals then stay bad debt).
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 68)))
    self.loss_policies[loss_policy] = policy
    log LossPolicyContractSet(loss_policy=loss_policy, policy=policy)


@external
def set_fee_recipient(recipient: address):
    """
    @notice Sets the receiver of the protocol share of fees.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 36)))
    assert recipient != empty(address), "clearing: zero address"
    self.fee_recipient = recipient
    log FeeRecipientSet(recipient=recipient)


@external
def add_market(params: IClearingHouse.MarketParams, loss_policy: uint8) -> uint256:
    """
    @notice Opens the next market id; the oracle must already price it.
    @param params Risk and fee parameters (see `IClearingHouse.MarketParams`).
    @param loss_policy A policy id with a registered contract (`loss_policies`).
    @return The new market id.
    """
    ownership._check_owner()
    market: uint256 = self.market_word & LOW_BITS
    assert market < c.MAX_MARKETS, "clearing: too many markets"
    self._check_params(params)
    self._check_policy(loss_policy)
    assert staticcall oracle.price(market) > 0  # reverts unless the oracle prices it
    self.market_word += 1
    self.state_word[market] = block.timestamp << layout.LAST_ACCRUAL | convert(loss_policy, uint256) << layout.LOSS_POLICY
    log MarketAdded(market=market, loss_policy=loss_policy)
    self._set_params(market, params)
    return market


@external
def set_market_params(market: uint256, params: IClearingHouse.MarketParams):
    """
    @notice Replaces a market's risk and fee parameters.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 356)))
    self._check_market(market)
    self._check_params(params)
    self._set_params(market, params)


@external
def set_loss_policy(market: uint256, loss_policy: uint8):
    """
    @notice Chooses the policy that absorbs future residuals of `market`.
            Past events keep the policy they were logged with.
    """
    ownership._check_owner()
    governed._check(keccak256(slice(msg.data, 0, 68)))
    self._check_market(market)
    self._check_policy(loss_policy)
    log LossPolicySet(
        market=market, previous=self._policy(market), policy=loss_policy
    )
    self._set_state(market, layout.LOSS_POLICY, layout.POLICY_BITS, convert(loss_policy, uint256))


@external
def set_reduce_only(market: uint256, reduce_only: bool):
    """
    @notice Kill switch: while set, fills may only shrink positions.
    """
    ownership._check_owner()
    self._check_market(market)
    self._set_state(market, layout.REDUCE_ONLY, 1, convert(reduce_only, uint256))
    log ReduceOnlySet(market=market, reduce_only=reduce_only)


# ------------------------------------------------------------------- margin


@external
@nonreentrant
def deposit(amount: uint256):
    """
    @notice Adds `amount` of collateral to the caller's margin account.
    @dev The received amount is measured, so fee-on-transfer tokens revert.
    """
    self._check_amount(amount)
    before: uint256 = staticcall token.balanceOf(self)
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "clearing: transfer failed"
    received: uint256 = staticcall token.balanceOf(self) - before
    assert received == amount, "clearing: token fee on transfer"
    self._settle_loss(msg.sender)
    self._credit(msg.sender, convert(amount, int256))
    log Deposited(account=msg.sender, amount=amount, collateral=self.collateral[msg.sender])


@external
@nonreentrant
def withdraw(amount: uint256):
    """
    @notice Withdraws settled collateral; the account must stay above its
            initial margin at the current marks.
    """
    self._check_amount(amount)
    self._touch(msg.sender)
    value: int256 = convert(amount, int256)
    assert self.collateral[msg.sender] >= value, "clearing: amount exceeds collateral"
    self._credit(msg.sender, -value)
    health: IClearingHouse.Health = self._health(msg.sender, False)
    assert health.equity >= convert(health.initial, int256), "clearing: below initial margin"
    assert extcall token.transfer(msg.sender, amount, default_return_value=True), "clearing: transfer failed"
    log Withdrawn(account=msg.sender, amount=amount, collateral=self.collateral[msg.sender])


# ------------------------------------------------------------------- trading


@external
@nonreentrant
def execute_fill(
    buyer: address,
    seller: address,
    market: uint256,
    size: uint256,
    price: uint256,
    buyer_is_maker: bool,
    buyer_reduce_only: bool,
    seller_reduce_only: bool,
) -> (uint256, uint256):
    """
    @notice Books one fill matched by the order book: positions, fees and
            margin checks of both sides.
    @return The fees charged to the buyer and to the seller.
    """
    assert msg.sender == self.order_book, "clearing: not order book"
    self._check_market(market)
    assert size > 0, "clearing: zero size"
    assert size <= c.MAX_SIZE, "clearing: size too large"
    assert price > 0, "clearing: zero price"
    assert price <= c.MAX_PRICE, "clearing: price too large"
    self._accrue(market)
    last: uint256 = 0
    fresh: bool = False
    last, fresh = staticcall oracle.mark(market)
    open_interest: uint256 = self._state(market, layout.OPEN_INTEREST, layout.OI_BITS)
    delta: int256 = convert(size, int256)
    buyer_fee: uint256 = self._fill_side(buyer, market, delta, price, buyer_is_maker, buyer_reduce_only, fresh)
    seller_fee: uint256 = self._fill_side(seller, market, -delta, price, not buyer_is_maker, seller_reduce_only, fresh)
    self._book()
    # Only fills that raise open interest are capped: closing always works.
    new_open_interest: uint256 = self._state(market, layout.OPEN_INTEREST, layout.OI_BITS)
    if new_open_interest > open_interest:
        assert new_open_interest <= self._param(market, layout.OI_CAP, layout.CAP_BITS), "clearing: open interest cap"
    return buyer_fee, seller_fee


# ------------------------------------------------------------------- funding


@external
@nonreentrant
def set_funding_rate(market: uint256, rate: int256):
    """
    @notice Sets the funding rate (WAD fraction of the mark per second, > 0:
            longs pay shorts) after accruing the old rate up to now.
    """
    assert self.is_keeper[msg.sender], "clearing: not keeper"
    self._check_market(market)
    assert abs(rate) <= convert(self._param(market, layout.MAX_FUNDING_RATE, layout.RATE_BITS), int256), "clearing: funding rate too high"
    # A new rate never reaches back over a stale interval.
    assert self._accrue(market), "oracle: stale price"
    self._set_state(market, layout.FUNDING_RATE, layout.FUNDING_RATE_BITS, layout._unsigned(rate, layout.FUNDING_RATE_BITS))
    log FundingRateSet(
        market=market, rate=rate, long_index=self.funding_index[market][True], short_index=self.funding_index[market][False]
    )


@external
@nonreentrant
def settle_funding(account: address):
    """
    @notice Accrues and books the pending funding of every position of `account`.
    """
    self._touch(account)


# --------------------------------------------------------------- liquidation


@external
@nonreentrant
def liquidate(account: address, market: uint256, max_size: uint256, backstop: bool) -> uint256:
    """
    @notice Takes over up to `max_size` of an under-margined position at the
            mark price. Partial first: at most the size that restores the
            liquidation target (halfway between maintenance and initial
            margin), the whole position when nothing less does or when the
            account's equity is not positive. When the account is left
            with no position and negative collateral, the loss waterfall runs.
    @param backstop Keepers only: the insurance vault's margin account takes
            the position instead of the caller.
    @return The base amount taken over.
    """
    self._check_market(market)
    assert max_size > 0, "clearing: zero size"
    taker: address = msg.sender
    if backstop:
        assert self.is_keeper[msg.sender], "clearing: not keeper"
        taker = insurance_vault
    assert taker != account, "clearing: self liquidation"

    self._touch(account)
    self._settle_loss(taker)
    self._settle_funding(taker, market)
    size: int256 = self._size(account, market)
    assert size != 0, "clearing: no position"
    health: IClearingHouse.Health = self._health(account, True)
    assert health.equity < convert(health.maintenance, int256), "clearing: not liquidatable"
    # ADL and PROFIT markets: a bankrupt position goes to the deleverager
    # first (fills or a clawback); only a keeper may take it over at the mark.
    if health.equity < 0 and self._keeper_fed(self._policy(market)):
        assert self.is_keeper[msg.sender], "clearing: bankrupt, keepers only"

    mark: uint256 = staticcall oracle.price(market)
    amount: uint256 = min(
        max_size,
        liquidation._max_size(
            health.equity,
            health.maintenance,
            health.initial,
            size,
            mark,
            self._param(market, layout.MMR, layout.BPS_BITS),
            self._param(market, layout.IMR, layout.BPS_BITS),
            self._param(market, layout.PENALTY, layout.BPS_BITS),
        ),
    )
    # Who pays a residual is fixed by the state before the bankrupt position
    # moves: a taker holding the opposite side (the side OPEN_INTEREST charges)
    # takes a bankrupt position whole and pays for what it closes of its own.
    taker_size: int256 = self._size(taker, market)
    closing: uint256 = 0
    if taker_size != 0 and (taker_size > 0) != (size > 0):
        closing = min(amount, convert(abs(taker_size), uint256))
        if health.equity <= 0:
            assert amount == convert(abs(size), uint256), "clearing: bankrupt, take it whole"
    open_interest: uint256 = self._state(market, layout.OPEN_INTEREST, layout.OI_BITS)
    delta: int256 = convert(amount, int256)
    if size > 0:
        delta = -delta
    self._apply_fill(account, market, delta, mark, False)
    self._apply_fill(taker, market, -delta, mark, False)
    self._book()

    # Penalty on the notional taken over, never more than the equity left.
    notional: uint256 = amount * mark // c.WAD
    penalty: uint256 = math._mul_div(notional, self._param(market, layout.PENALTY, layout.BPS_BITS), c.BPS, True)
    penalty = convert(min(convert(penalty, int256), max(health.equity, 0)), uint256)
    reward: uint256 = penalty * self._param(market, layout.LIQUIDATOR_SHARE, layout.BPS_BITS) // c.BPS
    insurance_reward: uint256 = penalty - reward
    self._credit(account, -convert(penalty, int256))
    self._credit(taker, convert(reward, int256))
    if insurance_reward > 0:
        self._transfer_out(insurance_vault, insurance_reward)

    taker_health: IClearingHouse.Health = self._health(taker, False)
    assert taker_health.equity >= convert(taker_health.initial, int256), "clearing: liquidator below initial margin"
    log PositionLiquidated(
        account=account,
        liquidator=taker,
        market=market,
        size=-delta,
        price=mark,
        penalty=penalty,
        liquidator_reward=reward,
        insurance_reward=insurance_reward,
        remaining_size=self._size(account, market),
    )
    if self.collateral[account] < 0 and not self._has_position(account):
        self._run_waterfall(account, market, size > 0, mark, open_interest, taker, closing)
    return amount


@external
@nonreentrant
def adl_fill(bankrupt: address, account: address, market: uint256, amount: uint256) -> uint256:
    """
    @notice The contract of the market's policy only (ADL: Deleverager.vy,
            PROFIT: ProfitPolicy.vy): places part of a bankrupt account's
            residual on `account`, by the rules of the market's policy (the
            policy's contract chooses the counterparties and amounts; the
            bounds are checked here).
            ADL: `account` closes `amount` of its position in `market`
            against the bankrupt account's opposite position, at the
            bankruptcy price this contract computes from the state at the
            first fill of the transaction (never the deleverager's). When the
            bankrupt account is left with no position, the loss waterfall
            runs on what it still owes, or what it holds beyond zero goes to
            the insurance vault.
            PROFIT: `amount` of `account`'s unrealised profit in `market`
            goes to the bankrupt account's collateral: at most that profit
            (funding settled), which it leaves by raising the position's cost
            basis (so no profit pays twice, however many calls), never
            leaving `account` below zero equity, and in all at most the
            bankrupt account's residual R, which this contract computes
            from the state at its first charge of the transaction (so the
            charges never lift it above what the insurance vault covers).
    @return The bankruptcy price (ADL), 0 (PROFIT).
    """
    policy: uint8 = self._policy(market)
    assert self._keeper_fed(policy), "clearing: not an ADL or PROFIT market"
    assert msg.sender == self.loss_policies[policy], "clearing: not the policy's contract"
    self._touch(bankrupt)
    self._touch(account)
    size: int256 = self._size(bankrupt, market)
    other: int256 = 0
    open_notional: int256 = 0
    other, open_notional = self._base(account, market)
    was_long: bool = size > 0
    price: uint256 = 0
    if policy == c.POLICY_PROFIT:
        value: int256 = convert(amount, int256)
        left: uint256 = self.clawback_left[bankrupt]
        if left == 0:
            left = self._shortfall(bankrupt, market) + 1
        assert (
            size != 0
            and amount > 0
            and value <= math._div_floor(other * convert(staticcall oracle.price(market), int256), c.WAD_INT) - open_notional
            and amount < left
        ), "clearing: bad clawback"
        self.clawback_left[bankrupt] = left - amount
        # Taken out of the position's profit (its cost basis), so no profit pays twice.
        self.stored_positions[account][market].base = self._pack(other, open_notional + value)
        # X: the payer's drops by `value`, the bankrupt account's rises by it (G unchanged).
        self.collateral[bankrupt] += value
        self.total_collateral += value
        self.total_open_notional += value
    else:
        assert (
            size != 0
            and other != 0
            and (other > 0) != was_long
            and amount > 0
            and amount <= min(convert(abs(other), uint256), convert(abs(size), uint256))
        ), "clearing: bad ADL fill"
        price = self.adl_price[bankrupt]
        if price == 0:
            price = bankruptcy._price(self._shortfall(bankrupt, market), size, staticcall oracle.price(market))
            self.adl_price[bankrupt] = price
        delta: int256 = convert(amount, int256)
        if was_long:
            delta = -delta
        # The notional is rounded for the bankrupt account (up when it sells,
        # down when it buys), so the fills cover R with one price for all.
        self._apply_fill(bankrupt, market, delta, price, was_long)
        self._apply_fill(account, market, -delta, price, was_long)
        self._book()
    assert self._health(account, True).equity >= 0, "clearing: negative equity"
    if price == 0 or self._has_position(bankrupt):
        return price
    self.adl_price[bankrupt] = 0  # the run is over
    left: int256 = self.collateral[bankrupt]
    if left < 0:
        self._run_waterfall(bankrupt, market, was_long, 0, 0, empty(address), 0)
    elif left > 0:
        # The bankruptcy price's rounding surplus (a few units): the vault's.
        self._credit(bankrupt, -left)
        self._transfer_out(insurance_vault, convert(left, uint256))
        log AdlSurplus(account=bankrupt, market=market, amount=convert(left, uint256))
    return price


@external
@nonreentrant
def sweep_fees():
    """
    @notice Pays owed fees out: the protocol share to the fee recipient, the
            insurance share to the insurance vault. Anyone may call it.
    """
    word: uint256 = self.fee_word
    protocol_amount: uint256 = word & FEE_MASK
    insurance_amount: uint256 = word >> FEE_BITS
    self.fee_word = 0
    if protocol_amount > 0:
        self._transfer_out(self.fee_recipient, protocol_amount)
    if insurance_amount > 0:
        self._transfer_out(insurance_vault, insurance_amount)
    log FeesSwept(protocol_amount=protocol_amount, insurance_amount=insurance_amount)


# --------------------------------------------------------------------- views


@external
@view
def health(account: address) -> IClearingHouse.Health:
    """
    @notice Equity with the maintenance and initial margin requirements.
    """
    return self._health(account, False)


@external
@view
def positions(account: address, market: uint256) -> IClearingHouse.Position:
    """
    @notice The position of `account` in `market`, as last settled.
    """
    return self._position(account, market)


@external
@view
def market_words(market: uint256) -> (uint256, uint256, uint256, int256, int256):
    """
    @notice A market as stored: its parameters word, insurance draw cap,
            state word and the long and short funding indexes. The lens's
            `market_params` and `markets` unpack them (modules/market_layout.vy).
    """
    return (
        self.params_word[market],
        self.max_insurance_draw[market],
        self.state_word[market],
        self.funding_index[market][True],
        self.funding_index[market][False],
    )


@external
@view
def protocol_fees() -> uint256:
    """
    @notice Fees owed to the fee recipient, not yet swept.
    """
    return self.fee_word & FEE_MASK


@external
@view
def insurance_fees() -> uint256:
    """
    @notice Fees owed to the insurance vault (fee shares and withheld
            negative EQUITY shares), not yet swept.
    """
    return self.fee_word >> FEE_BITS


@external
@view
def market_count() -> uint256:
    """
    @notice The number of listed markets (ids 0 to market_count - 1).
    """
    return self.market_word & LOW_BITS


@external
@view
def loss_snapshot(account: address) -> uint256:
    """
    @notice The EQUITY scale K at the account's last settlement (0: never settled).
    """
    return self.account_word[account] & LOW_BITS


@external
@view
def open_markets(account: address) -> uint256:
    """
    @notice The markets where the account has a position: bit m for market m.
    """
    return self.account_word[account] >> OPEN_BIT





# ------------------------------------------------------------------ internal


@internal
@pure
def _check_amount(amount: uint256):
    assert amount > 0, "clearing: zero amount"
    assert amount <= convert(max_value(int128), uint256), "clearing: amount too large"


@internal
@view
def _check_market(market: uint256):
    assert market < self.market_word & LOW_BITS, "clearing: unknown market"


@internal
@view
def _check_policy(loss_policy: uint8):
    assert self.loss_policies[loss_policy] != empty(address), "clearing: unknown policy"


@internal
@pure
def _check_params(p: IClearingHouse.MarketParams):
    assert p.mmr_bps > 0 and p.mmr_bps < p.imr_bps and p.imr_bps <= c.BPS, "clearing: bad margin ratios"
    assert p.penalty_bps < p.mmr_bps, "clearing: penalty not below maintenance"
    assert p.liquidator_share_bps <= c.BPS, "clearing: bad liquidator share"
    assert p.maker_fee_bps <= 1_000 and p.taker_fee_bps <= 1_000, "clearing: fee too high"
    assert p.fee_insurance_share_bps <= c.BPS, "clearing: bad insurance share"
    assert p.oi_cap > 0 and p.oi_cap <= c.MAX_SIZE, "clearing: bad open interest cap"
    assert p.max_funding_rate <= c.WAD // 3_600, "clearing: funding cap too high"


@internal
def _set_params(market: uint256, p: IClearingHouse.MarketParams):
    self.params_word[market] = layout._pack_params(p)  # fields checked by _check_params
    self.max_insurance_draw[market] = p.max_insurance_draw
    log MarketParamsSet(market=market, params=p)


@internal
@view
def _param(market: uint256, at: uint256, bits: uint256) -> uint256:
    return layout._field(self.params_word[market], at, bits)


@internal
@view
def _state(market: uint256, at: uint256, bits: uint256) -> uint256:
    return layout._field(self.state_word[market], at, bits)


@internal
def _set_state(market: uint256, at: uint256, bits: uint256, field: uint256):
    # `field` fits `bits` (modules/market_layout.vy).
    mask: uint256 = ((1 << bits) - 1) << at
    self.state_word[market] = (self.state_word[market] & ~mask) | field << at


@internal
@view
def _funding_rate(market: uint256) -> int256:
    return layout._signed(self.state_word[market], layout.FUNDING_RATE, layout.FUNDING_RATE_BITS)


@internal
@pure
def _keeper_fed(loss_policy: uint8) -> bool:
    return loss_policy == c.POLICY_ADL or loss_policy == c.POLICY_PROFIT


@internal
@view
def _policy(market: uint256) -> uint8:
    return convert(self._state(market, layout.LOSS_POLICY, layout.POLICY_BITS), uint8)


@internal
def _credit(account: address, amount: int256):
    # The account must be settled to the current EQUITY scale (see _settle_loss).
    self.collateral[account] += amount
    self.total_collateral += amount
    loss_equity._add_basis(amount)


@internal
def _credit_in_fill(account: address, amount: int256):
    # `_credit` within a fill: the aggregates move at `_book`.
    self.collateral[account] += amount
    self.fill_totals.collateral += amount
    self.fill_totals.basis += amount


@internal
def _add_fees(protocol: uint256, insurance: uint256):
    word: uint256 = self.fee_word
    protocol_owed: uint256 = (word & FEE_MASK) + protocol
    insurance_owed: uint256 = (word >> FEE_BITS) + insurance
    assert protocol_owed <= FEE_MASK and insurance_owed <= FEE_MASK, "clearing: fees overflow, sweep them"
    self.fee_word = protocol_owed | insurance_owed << FEE_BITS


@internal
def _transfer_out(to: address, amount: uint256):
    assert extcall token.transfer(to, amount, default_return_value=True), "clearing: transfer failed"


@internal
@view
def _has_position(account: address) -> bool:
    return self.account_word[account] >> OPEN_BIT != 0


@internal
@pure
def _pack(size: int256, open_notional: int256) -> uint256:
    assert abs(size) < SIZE_LIMIT and abs(open_notional) < NOTIONAL_LIMIT, "clearing: position out of range"
    low: uint256 = convert(convert(size, bytes32), uint256) & convert(2 * SIZE_LIMIT - 1, uint256)
    return USED | low << SIZE_AT | convert(convert(open_notional, bytes32), uint256) << NOTIONAL_AT


@internal
@view
def _base(account: address, market: uint256) -> (int256, int256):
    """
    @dev Size and open notional of a position, from its one packed word
         (an arithmetic right shift restores each sign).
    """
    word: bytes32 = convert(self.stored_positions[account][market].base, bytes32)
    return self._size_of(word), convert(word, int256) >> NOTIONAL_AT


@internal
@pure
def _size_of(word: bytes32) -> int256:
    return layout._signed(convert(word, uint256), SIZE_AT, SIZE_BITS)


@internal
@view
def _position(account: address, market: uint256) -> IClearingHouse.Position:
    size: int256 = 0
    open_notional: int256 = 0
    size, open_notional = self._base(account, market)
    return IClearingHouse.Position(
        size=size,
        open_notional=open_notional,
        funding_index=self.stored_positions[account][market].funding_index,
        equity_index=self.stored_positions[account][market].equity_index,
    )


@internal
@view
def _size(account: address, market: uint256) -> int256:
    return self._size_of(convert(self.stored_positions[account][market].base, bytes32))


@internal
@view
def _side_index(market: uint256, long: bool) -> int256:
    return self.funding_index[market][long]


@internal
@view
def _index_now(market: uint256, mark: uint256, long: bool) -> int256:
    # Field by field: copying the whole struct would read every slot.
    return funding._index_now(
        self._side_index(market, long),
        self._funding_rate(market),
        mark,
        block.timestamp - self._state(market, layout.LAST_ACCRUAL, layout.TIME_BITS),
    )


@internal
def _accrue(market: uint256) -> bool:
    """
    @dev Moves the funding index to now at the current mark. With a stale
         mark and a rate it does nothing and returns False: the interval is
         accrued later, at the next fresh mark.
    """
    elapsed: uint256 = block.timestamp - self._state(market, layout.LAST_ACCRUAL, layout.TIME_BITS)
    if elapsed == 0:
        return True
    rate: int256 = self._funding_rate(market)
    mark: uint256 = 0
    fresh: bool = True
    if rate != 0:
        mark, fresh = staticcall oracle.mark(market)
        if not fresh:
            return False
    self._set_state(market, layout.LAST_ACCRUAL, layout.TIME_BITS, block.timestamp)
    if rate == 0:
        return True
    delta: int256 = rate * convert(mark * elapsed, int256)
    self.funding_index[market][True] += delta
    self.funding_index[market][False] += delta
    log FundingAccrued(
        market=market,
        long_index=self.funding_index[market][True],
        short_index=self.funding_index[market][False],
        rate=rate,
        price=mark,
        elapsed=elapsed,
    )
    return True


@internal
@view
def _pending_funding(market: uint256, mark: uint256, size: int256, funding_index: int256) -> int256:
    return funding._owed(size, funding_index, self._index_now(market, mark, size > 0))


@internal
def _settle_funding(account: address, market: uint256):
    """
    @dev Books pending funding of one position; the market must be accrued.
    """
    size: int256 = self._size(account, market)
    if size == 0:
        return
    index: int256 = self._side_index(market, size > 0)
    snapshot: int256 = self.stored_positions[account][market].funding_index
    if snapshot == index:
        return
    self.stored_positions[account][market].funding_index = index
    accrued: int256 = size * (index - snapshot)
    # X moves by the exact accrued amount; the collateral by its ceiling.
    loss_equity._add_basis(math._div_floor(accrued, c.FUNDING_SCALE))
    owed: int256 = math._div_ceil(accrued, c.FUNDING_SCALE)
    if owed == 0:
        return
    self._credit(account, -owed)
    self.funding_pool += owed
    log FundingSettled(account=account, market=market, amount=owed)


@internal
def _touch(account: address):
    """
    @dev Settles socialized losses, accrues every market the account trades
         and books its funding: after it, stored state equals current state.
    """
    self._settle_loss(account)
    held: uint256 = self.account_word[account] >> OPEN_BIT
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 != 0:
            self._accrue(m)
            self._settle_funding(account, m)


@internal
@view
def _health(account: address, strict: bool) -> IClearingHouse.Health:
    """
    @dev Equity and margin requirements at the current marks. Values are
         floored and funding and requirements rounded up: against the account.
         A stale mark reverts when `strict` (liquidations: never on a price
         the oracle does not vouch for); otherwise the position is valued at
         the last mark moved against its holder (modules/valuation.vy).
    """
    result: IClearingHouse.Health = IClearingHouse.Health(
        # a negative EQUITY share is withheld (see `_settle_loss`)
        equity=min(self._settled(account), self.collateral[account]), maintenance=0, initial=0
    )
    held: uint256 = self.account_word[account] >> OPEN_BIT
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 == 0:
            continue
        size: int256 = 0
        open_notional: int256 = 0
        size, open_notional = self._base(account, m)
        mark: uint256 = 0
        fresh: bool = False
        mark, fresh = staticcall oracle.mark(m)
        accrual_mark: uint256 = mark
        if not fresh:
            assert not strict, "oracle: stale price"
            accrual_mark = 0  # funding over the stale interval accrues at the next fresh mark
            mark = valuation._stale_mark(mark, size, self._param(m, layout.IMR, layout.BPS_BITS))
        value: int256 = math._div_floor(size * convert(mark, int256), c.WAD_INT)
        result.equity += (
            value
            - open_notional
            - self._pending_funding(m, accrual_mark, size, self.stored_positions[account][m].funding_index)
        )
        exposure: uint256 = convert(abs(size), uint256) * mark
        result.maintenance += math._mul_div(
            exposure, self._param(m, layout.MMR, layout.BPS_BITS), c.WAD * c.BPS, True
        )
        result.initial += math._mul_div(exposure, self._param(m, layout.IMR, layout.BPS_BITS), c.WAD * c.BPS, True)
    return result


@internal
def _apply_fill(account: address, market: uint256, delta: int256, price: uint256, round_up: bool):
    """
    @dev Adds `delta` base at `price` to a position whose funding is settled.
         The notional |delta| * price is floored (rounded up when
         `round_up`: ADL fills only) once and used with opposite signs by
         both sides, so collateral - open notional moves by exactly minus the
         notional: trades neither create nor destroy value. Closing releases
         cost basis rounded up, so realised PnL is rounded down.
         The account's collateral is written here, the aggregates by `_book`.
    """
    position: IClearingHouse.Position = self._position(account, market)
    old_size: int256 = position.size
    new_size: int256 = old_size + delta
    notional: int256 = convert(
        math._mul_div(convert(abs(delta), uint256), price, c.WAD, round_up), int256
    )
    if delta < 0:
        notional = -notional

    realized: int256 = 0
    open_notional: int256 = position.open_notional
    if old_size == 0 or (old_size > 0) == (delta > 0):
        open_notional += notional
    elif abs(delta) <= abs(old_size):
        released: int256 = open_notional
        if abs(delta) < abs(old_size):
            released = math._div_ceil(open_notional * abs(delta), abs(old_size))
        realized = -notional - released
        open_notional -= released
    else:
        # Flip: close everything, open the rest at the same price.
        opened: int256 = convert(convert(abs(new_size), uint256) * price // c.WAD, int256)
        if new_size < 0:
            opened = -opened
        realized = -(notional - opened) - open_notional
        open_notional = opened

    funding_index: int256 = self._side_index(market, new_size > 0)
    equity_index: int256 = loss_equity.side_index[market][new_size > 0]
    self.stored_positions[account][market] = StoredPosition(
        base=self._pack(new_size, open_notional), funding_index=funding_index, equity_index=equity_index
    )
    if realized != 0:
        self._credit_in_fill(account, realized)
    if (old_size == 0) != (new_size == 0):
        self.account_word[account] ^= 1 << (OPEN_BIT + market)
    oi: uint256 = self._state(market, layout.OPEN_INTEREST, layout.OI_BITS)
    new_oi: uint256 = oi + convert(max(new_size, 0), uint256) - convert(max(old_size, 0), uint256)
    self._set_state(market, layout.OPEN_INTEREST, layout.OI_BITS, new_oi)
    if (oi == 0) != (new_oi == 0):
        self.market_word ^= 1 << (OPEN_BIT + market)
    log PositionChanged(
        account=account,
        market=market,
        size=new_size,
        open_notional=open_notional,
        realized_pnl=realized,
    )
    # X moves by the realised PnL (credited above) - delta(open notional) + delta(size * (f + a)) / WAD**2.
    self.fill_totals.open_notional += open_notional - position.open_notional
    self.fill_totals.basis += math._div_floor(
        new_size * (funding_index + equity_index) - old_size * (position.funding_index + position.equity_index),
        c.FUNDING_SCALE,
    ) - (open_notional - position.open_notional)


@internal
def _book():
    """
    @dev Writes the fill's change of each aggregate, once and only when it
         is not zero.
    """
    t: Totals = self.fill_totals
    self.fill_totals = empty(Totals)
    if t.collateral != 0:
        self.total_collateral += t.collateral
    if t.open_notional != 0:
        self.total_open_notional += t.open_notional
    if t.basis != 0:
        loss_equity._add_basis(t.basis)


@internal
def _fill_side(
    account: address, market: uint256, delta: int256, price: uint256, is_maker: bool, reduce_only: bool, fresh: bool
) -> uint256:
    """
    @dev One side of a fill: reduce-only rules (a market whose mark is stale
         only reduces positions), position, fee, margin check.
    @return The fee charged.
    """
    self._settle_loss(account)
    self._settle_funding(account, market)
    old_size: int256 = self._size(account, market)
    reduces: bool = old_size != 0 and (old_size > 0) != (delta > 0) and abs(delta) <= abs(old_size)
    if reduce_only:
        assert reduces, "clearing: not reducing"
    if self._state(market, layout.REDUCE_ONLY, 1) != 0:
        assert reduces, "clearing: market reduce-only"
    assert fresh or reduces, "clearing: stale mark, reduce only"
    self._apply_fill(account, market, delta, price, False)

    fee_bps: uint256 = self._param(market, layout.TAKER_FEE, layout.BPS_BITS)
    if is_maker:
        fee_bps = self._param(market, layout.MAKER_FEE, layout.BPS_BITS)
    fee: uint256 = math._mul_div(convert(abs(delta), uint256) * price // c.WAD, fee_bps, c.BPS, True)
    if fee > 0:
        self._credit_in_fill(account, -convert(fee, int256))
        to_insurance: uint256 = fee * self._param(market, layout.FEE_INSURANCE_SHARE, layout.BPS_BITS) // c.BPS
        self._add_fees(fee - to_insurance, to_insurance)

    health: IClearingHouse.Health = self._health(account, False)
    if reduces:
        assert health.equity >= 0, "clearing: negative equity"
    else:
        assert health.equity >= convert(health.initial, int256), "clearing: below initial margin"
    return fee


@internal
def _run_waterfall(
    account: address,
    market: uint256,
    was_long: bool,
    mark: uint256,
    open_interest: uint256,
    taker: address,
    closing: uint256,
):
    """
    @dev The account has no position and negative collateral: its deficit is
         drawn from the insurance vault (capped per event by the market) and
         the residual goes to the market's loss policy in this same
         transaction; what the policy cannot place stays as bad debt.
         `open_interest` is the market's before the liquidation fill and
         `closing` what `taker` closed of the charged side (OPEN_INTEREST).
    """
    deficit: uint256 = convert(-self.collateral[account], uint256)
    request: uint256 = deficit
    cap: uint256 = self.max_insurance_draw[market]
    if cap > 0:
        request = min(request, cap)
    paid: uint256 = 0
    if request > 0:
        before: uint256 = staticcall token.balanceOf(self)
        extcall IInsuranceVault(insurance_vault).cover(request)
        paid = staticcall token.balanceOf(self) - before
        assert paid <= request, "clearing: vault overpaid"
    residual: uint256 = deficit - paid
    # The account ends at zero; the residual is the policy's to place.
    self._credit(account, convert(deficit, int256))
    log AccountBankrupt(
        account=account, market=market, deficit=deficit, insurance_paid=paid, residual=residual
    )
    if residual == 0:
        return
    policy: uint8 = self._policy(market)
    # The market's policy says how to place R (interfaces/ILossPolicy.vyi). A
    # static call with bounded gas: an answer that reverts, is shorter than
    # two words or places more than R places nothing, and the liquidation
    # goes on (of a longer answer the first two words are read).
    by_side: uint256 = 0
    by_equity: uint256 = 0
    ok: bool = False
    answer: Bytes[64] = b""
    ok, answer = raw_call(
        self.loss_policies[policy],
        abi_encode(
            account, market, residual, was_long, mark, open_interest,
            method_id=method_id("place(address,uint256,uint256,bool,uint256,uint256)"),
        ),
        max_outsize=64,
        gas=POLICY_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if ok and len(answer) == 64:
        by_side = extract32(answer, 0, output_type=uint256)
        by_equity = extract32(answer, 32, output_type=uint256)
        if by_side > residual or by_equity > residual - by_side:
            by_side = 0
            by_equity = 0
    booked: uint256 = 0
    if by_side > 0:
        booked = self._socialize_open_interest(
            account, market, by_side, was_long, mark, open_interest, taker, closing
        )
    if by_equity > 0:
        booked += self._socialize_equity(account, market, by_equity)
    unplaced: uint256 = residual - booked
    if unplaced > 0:
        self.bad_debt += unplaced
        log ResidualRecorded(
            account=account,
            market=market,
            loss_policy=policy,
            residual=unplaced,
            bad_debt=self.bad_debt,
        )


@internal
@view
def _shortfall(account: address, market: uint256) -> uint256:
    """
    @dev What a bankrupt account owes beyond the insurance the vault can pay
         it (its idle assets, capped by the market's draw): R = -e - I > 0.
    """
    equity: int256 = self._health(account, True).equity
    insurance: uint256 = staticcall IInsuranceVault(insurance_vault).idle_assets()
    cap: uint256 = self.max_insurance_draw[market]
    if cap > 0:
        insurance = min(insurance, cap)
    assert equity < -convert(insurance, int256), "clearing: not bankrupt"
    return convert(-equity, uint256) - insurance


@internal
@view
def _equity_marks() -> (
    int256, DynArray[uint256, c.MAX_MARKETS], int256[c.MAX_MARKETS], int256[c.MAX_MARKETS]
):
    """
    @dev For every market with open interest: q = mark * WAD - funding index
         now per side, and the open-interest correction of D (see
         loss_equity). Marks come from `mark`, which never reverts: a
         stale market elsewhere must not block a liquidation.
    """
    markets: DynArray[uint256, c.MAX_MARKETS] = []
    q_long: int256[c.MAX_MARKETS] = empty(int256[c.MAX_MARKETS])
    q_short: int256[c.MAX_MARKETS] = empty(int256[c.MAX_MARKETS])
    correction: int256 = 0
    active: uint256 = self.market_word >> OPEN_BIT
    for m: uint256 in range(c.MAX_MARKETS):
        if active >> m == 0:
            break
        if (active >> m) & 1 == 0:
            continue
        open_interest: int256 = convert(self._state(m, layout.OPEN_INTEREST, layout.OI_BITS), int256)
        markets.append(m)
        mark: uint256 = 0
        fresh: bool = False
        mark, fresh = staticcall oracle.mark(m)
        value: int256 = convert(mark * c.WAD, int256)
        if not fresh:
            mark = 0  # funding over a stale interval is not accrued yet
        q_long[m] = value - self._index_now(m, mark, True)
        q_short[m] = value - self._index_now(m, mark, False)
        correction += math._div_floor(
            open_interest
            * (
                (q_long[m] - loss_equity.side_index[m][True])
                - (q_short[m] - loss_equity.side_index[m][False])
            ),
            c.FUNDING_SCALE,
        )
    return correction, markets, q_long, q_short


@internal
def _socialize_equity(account: address, market: uint256, residual: uint256) -> uint256:
    """
    @dev EQUITY: every account's equity shrinks by the same rate r, booked in
         O(markets) on the global scale and side indexes; accounts settle
         lazily, before anything reads their equity.
    @return The amount booked (residual, or less when D is too small).
    """
    correction: int256 = 0
    markets: DynArray[uint256, c.MAX_MARKETS] = []
    q_long: int256[c.MAX_MARKETS] = empty(int256[c.MAX_MARKETS])
    q_short: int256[c.MAX_MARKETS] = empty(int256[c.MAX_MARKETS])
    correction, markets, q_long, q_short = self._equity_marks()
    total_equity: int256 = loss_equity._total_equity(correction)
    rate: uint256 = loss_equity._rate(residual, total_equity)
    if rate == 0:
        return 0
    booked: uint256 = residual
    # Capped rate: r * D covers less than R + 1; book what it covers, minus one.
    covered: uint256 = convert(loss_equity._mul_scale(total_equity, rate), uint256)
    if covered <= residual:
        booked = max(covered, 1) - 1
    scale_before: uint256 = loss_equity.scale
    loss_equity._apply_rate(rate, markets, q_long, q_short)
    self.loss_receivable += convert(booked, int256)
    log LossSocialized(
        account=account,
        market=market,
        loss_policy=c.POLICY_EQUITY,
        residual=residual,
        booked=booked,
        basis=total_equity,
        rate=rate,
        index_before=convert(scale_before, int256),
        index_after=convert(loss_equity.scale, int256),
    )
    return booked


@internal
def _socialize_open_interest(
    account: address,
    market: uint256,
    residual: uint256,
    was_long: bool,
    mark: uint256,
    open_interest: uint256,
    taker: address,
    closing: uint256,
) -> uint256:
    """
    @dev OPEN_INTEREST: the side opposite the bankrupt position, as it stood
         before the liquidation (open interest OI), pays per contract
             ceil(R * WAD**2 / OI), at most the mark (mark * WAD)
         and never moving the side's index beyond +-MAX_INDEX; what the cap
         leaves is bad debt. The positions still open pay it as a one-sided
         move of their side's funding index, settled with their funding; the
         part the taker closed by taking the position over pays now.
    @return The amount booked (0 when there was no open interest).
    """
    if open_interest == 0:
        return 0
    before: int256 = self._side_index(market, not was_long)
    # Room left before the index would cross +-MAX_INDEX on the charged side.
    room: int256 = c.MAX_INDEX - before
    if was_long:
        room = c.MAX_INDEX + before
    per_contract: uint256 = min(
        math._mul_div(residual, convert(c.FUNDING_SCALE, uint256), open_interest, True),
        min(mark * c.WAD, convert(max(room, 0), uint256)),
    )
    booked: uint256 = min(residual, per_contract * open_interest // convert(c.FUNDING_SCALE, uint256))
    if booked == 0:
        return 0
    move: int256 = convert(per_contract, int256)
    if was_long:
        # Shorts pay: their owed amount is size * (index - snapshot), size < 0.
        self.funding_index[market][False] = before - move
    else:
        self.funding_index[market][True] = before + move
    self.funding_pool -= convert(booked, int256)
    if closing > 0:
        owed: int256 = math._div_ceil(convert(closing * per_contract, int256), c.FUNDING_SCALE)
        self._credit(taker, -owed)
        self.funding_pool += owed
        log FundingSettled(account=taker, market=market, amount=owed)
    log LossSocialized(
        account=account,
        market=market,
        loss_policy=c.POLICY_OPEN_INTEREST,
        residual=residual,
        booked=booked,
        basis=convert(open_interest, int256),
        rate=per_contract,
        index_before=before,
        index_after=self._side_index(market, not was_long),
    )
    return booked


@internal
@view
def _settled(account: address) -> int256:
    """
    @dev Collateral after the account's pending EQUITY socializations, before
         `_settle_loss` withholds a negative share.
    """
    word: uint256 = self.account_word[account]
    snapshot: uint256 = word & LOW_BITS
    stored: int256 = self.collateral[account]
    if snapshot == loss_equity.scale or snapshot == 0:
        return stored
    x_w2: int256 = stored * c.FUNDING_SCALE
    tail_w2: int256 = 0
    held: uint256 = word >> OPEN_BIT
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 == 0:
            continue
        position: IClearingHouse.Position = self._position(account, m)
        x_w2 += position.size * (position.funding_index + position.equity_index) - position.open_notional * c.FUNDING_SCALE
        tail_w2 += position.open_notional * c.FUNDING_SCALE - position.size * (
            position.funding_index + loss_equity.side_index[m][position.size > 0]
        )
    return loss_equity._settled_collateral(x_w2, snapshot, tail_w2)


@internal
def _settle_loss(account: address):
    """
    @dev Books the account's pending EQUITY charges (all socializations since
         its last touch, in one step) into its collateral.
    """
    word: uint256 = self.account_word[account]
    snapshot: uint256 = word & LOW_BITS
    scale: uint256 = loss_equity.scale
    if snapshot == scale:
        return
    if snapshot == 0:
        self.account_word[account] = word | scale
        return  # a new account: nothing to settle
    settled: int256 = self._settled(account)
    self.account_word[account] = word - snapshot + scale
    share: int256 = self.collateral[account] - settled
    charge: uint256 = 0
    to_insurance: uint256 = 0
    if share > 0:
        charge = convert(share, uint256)
        self.collateral[account] = settled
        self.total_collateral -= share
    else:
        # No account gains from a socialization: a negative share stays with
        # the system, as insurance fees, and the account's X drops by it in G.
        to_insurance = convert(-share, uint256)
        self._add_fees(0, to_insurance)
    self.loss_receivable -= share
    held: uint256 = word >> OPEN_BIT
    for m: uint256 in range(c.MAX_MARKETS):
        if held >> m == 0:
            break
        if (held >> m) & 1 != 0:
            self.stored_positions[account][m].equity_index = loss_equity.side_index[m][self._size(account, m) > 0]
    # X equals the old X * K / k up to the floor just taken: lower G by one unit
    # (and by a withheld share, which the account no longer holds).
    loss_equity._add_basis(-1 - convert(to_insurance, int256))
    log LossSettled(account=account, charge=charge, to_insurance=to_insurance, scale_before=snapshot, scale_after=scale)
