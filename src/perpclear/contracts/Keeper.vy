# pragma version ~=0.4.3
"""
@title Keeper
@license MIT
@notice Pushes marks and liquidates in the same transaction. Between an
        oracle update that makes an account liquidatable (or bankrupt) and
        a liquidation sent after it, every other account can act: a flat
        depositor can withdraw and leave its share of the coming residual to
        the others (docs/loss-policies.md, "The window before a bankruptcy").
        `run` closes that window: the marks land and the due liquidations
        run before any other transaction can see the new marks. In a PROFIT
        market `clawback` charges a bankrupt account's residual to the
        accounts in profit and takes its position over in one transaction,
        so nothing (a mark, funding, another account) comes between them.

        The keeper is a margin account of the clearing house: it takes over
        the positions it liquidates, with collateral its owner deposits
        (`fund`) and takes back (`defund`). It must be a price keeper of the
        oracle and a keeper of the clearing house (in an ADL market only a
        keeper may take a bankrupt position over, once the deleverager has
        no candidate left).

        Roles and bounds. An operator may call `run` and nothing else: it
        pushes marks within the oracle's own bound (`max_move_bps` over the
        move window) and liquidates only what the clearing house lets any
        liquidator take, at the mark, with this contract's margin. Granting
        an operator goes through the governance timelock, as granting an
        oracle keeper does; revoking is at once. The owner moves the
        keeper's own margin and nothing else.
"""

from ethereum.ercs import IERC20
from interfaces import IClearingHouse
from interfaces import IProfitPolicy
from interfaces import IPriceOracle
from .modules import constants as c
from .modules import ownership
from .modules import governed

initializes: ownership
initializes: governed

exports: (
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
    governed.timelock,
)

# Targets per `run`: one block's worth for a keeper, and a bounded loop.
MAX_TARGETS: constant(uint256) = 50
# The oracle's batch limit (PriceOracle.MAX_BATCH).
MAX_MARKS: constant(uint256) = 8
# Accounts per clawback (Deleverager.MAX_PAYERS).
MAX_PAYERS: constant(uint256) = 1_000
# "The whole position" as a liquidation size (the clearing house clamps it).
WHOLE: constant(uint256) = 10**30
# Enough of a revert's data for its reason (selector, offset, length, 96 bytes of text).
MAX_REASON: constant(uint256) = 164


struct Target:
    account: address
    market: uint256
    max_size: uint256  # the most to take over; the clearing house clamps it


event OperatorSet:
    operator: indexed(address)
    allowed: bool


event TargetSkipped:
    account: indexed(address)
    market: indexed(uint256)
    reason: Bytes[MAX_REASON]  # the clearing house's revert data


event Run:
    operator: indexed(address)
    marks: uint256
    liquidated: uint256
    skipped: uint256


clearing_house: public(immutable(IClearingHouse))
oracle: public(immutable(IPriceOracle))
token: public(immutable(IERC20))
operators: public(HashMap[address, bool])


@deploy
def __init__(_clearing_house: IClearingHouse):
    """
    @notice The deployer becomes the owner. No operator yet; the oracle, the
            collateral token and the governance timelock are the clearing
            house's.
    """
    assert _clearing_house.address != empty(address), "keeper: zero address"
    ownership.__init__()
    governed.__init__(staticcall _clearing_house.timelock())
    clearing_house = _clearing_house
    oracle = IPriceOracle(staticcall _clearing_house.oracle())
    token = IERC20(staticcall _clearing_house.token())


@external
def set_operator(operator: address, allowed: bool):
    """
    @notice Authorise (through the timelock) or revoke (at once) an operator.
            Owner only.
    """
    ownership._check_owner()
    if allowed:
        governed._check(keccak256(slice(msg.data, 0, 68)))
    assert operator != empty(address), "keeper: zero address"
    self.operators[operator] = allowed
    log OperatorSet(operator=operator, allowed=allowed)


@external
def run(
    markets: DynArray[uint256, MAX_MARKS],
    prices: DynArray[uint256, MAX_MARKS],
    targets: DynArray[Target, MAX_TARGETS],
    max_liquidations: uint256,
) -> uint256:
    """
    @notice Pushes `prices` for `markets` (none: the marks stand), then
            liquidates the targets in order, each once, until
            `max_liquidations` have succeeded. A target the clearing house
            refuses (not liquidatable at the new marks, no position, a
            bankrupt position that is the deleverager's first) is skipped
            with its reason; a bad mark reverts the whole run. Operators only.
    @return The number of liquidations made.
    """
    assert self.operators[msg.sender], "keeper: not operator"
    if len(markets) > 0:
        extcall oracle.set_prices(markets, prices)
    done: uint256 = 0
    skipped: uint256 = 0
    for target: Target in targets:
        if done == max_liquidations:
            break
        ok: bool = False
        reason: Bytes[MAX_REASON] = b""
        ok, reason = raw_call(
            clearing_house.address,
            abi_encode(
                target.account,
                target.market,
                target.max_size,
                False,
                method_id=method_id("liquidate(address,uint256,uint256,bool)"),
            ),
            max_outsize=MAX_REASON,
            revert_on_failure=False,
        )
        if ok:
            done += 1
        else:
            skipped += 1
            log TargetSkipped(account=target.account, market=target.market, reason=reason)
    log Run(operator=msg.sender, marks=len(markets), liquidated=done, skipped=skipped)
    return done


@external
def clawback(account: address, market: uint256, candidates: DynArray[address, MAX_PAYERS]) -> uint256:
    """
    @notice PROFIT: the PROFIT policy's `clawback` of the bankrupt `account`
            (this contract is the keeper that calls it), then this contract
            takes its position in `market` over at the mark, in the same
            transaction; the waterfall finds what the vault covers.
            Operators only.
    @return What the accounts in profit were charged.
    """
    assert self.operators[msg.sender], "keeper: not operator"
    charged: uint256 = extcall IProfitPolicy(staticcall clearing_house.loss_policies(c.POLICY_PROFIT)).clawback(account, market, candidates)
    extcall clearing_house.liquidate(account, market, WHOLE, False)
    return charged


@external
def fund(amount: uint256):
    """
    @notice Moves `amount` of the owner's collateral tokens into the keeper's
            margin account (the owner approves this contract first). Owner only.
    """
    ownership._check_owner()
    assert amount > 0, "keeper: zero amount"
    assert extcall token.transferFrom(msg.sender, self, amount, default_return_value=True), "keeper: transfer failed"
    assert extcall token.approve(clearing_house.address, amount, default_return_value=True), "keeper: approve failed"
    extcall clearing_house.deposit(amount)


@external
def defund(amount: uint256, to: address):
    """
    @notice Withdraws `amount` from the keeper's margin account (within what
            the clearing house allows) and sends it to `to`. Owner only.
    """
    ownership._check_owner()
    assert to != empty(address), "keeper: zero address"
    extcall clearing_house.withdraw(amount)
    assert extcall token.transfer(to, amount, default_return_value=True), "keeper: transfer failed"
