# pragma version ~=0.4.3
"""
@title FeeOnTransferToken
@license MIT
@notice Hostile ERC-20 for tests: every transfer (transfer and transferFrom,
        not mint) burns 1% of the amount, so the receiver gets 99%. Used to
        prove that contracts measuring balance deltas refuse such tokens.
@custom:kill A test token: there is nothing to stop. To freeze supply, the
        owner stops minting; transfers always keep working.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ..modules import erc20
from ..modules import ownership

implements: IERC20
implements: IERC20Detailed
initializes: erc20
initializes: ownership

exports: (
    erc20.name,
    erc20.symbol,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.approve,
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
)

# Fee burnt on every transfer, in basis points (100% = 10_000).
FEE_BPS: constant(uint256) = 100
BPS: constant(uint256) = 10_000

decimals: public(uint8)


@deploy
def __init__(name_: String[64], symbol_: String[32], decimals_: uint8):
    """
    @notice Create the token; the deployer becomes the minting owner.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Number of decimals (e.g. 6 or 18).
    """
    erc20.__init__(name_, symbol_)
    ownership.__init__()
    self.decimals = decimals_


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` tokens from the caller to `receiver`; 1% is burnt.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    @return True on success (reverts otherwise).
    """
    self._transfer_with_fee(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` tokens from `sender` to `receiver` using the caller's
            allowance; 1% is burnt. The allowance is charged the full
            `amount`. An allowance of max uint256 is not decremented.
    @param sender Owner of the tokens.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    @return True on success (reverts otherwise).
    """
    erc20._spend_allowance(sender, msg.sender, amount)
    self._transfer_with_fee(sender, receiver, amount)
    return True


@external
def mint(receiver: address, amount: uint256):
    """
    @notice Create `amount` new tokens for `receiver`. Owner only.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    """
    ownership._check_owner()
    erc20._mint(receiver, amount)


@internal
def _transfer_with_fee(sender: address, receiver: address, amount: uint256):
    # rounded down: dust amounts (< 100 units) move without a fee
    fee: uint256 = amount * FEE_BPS // BPS
    # the receiver gets amount - fee, and the sender burns the fee: together
    # they need the sender to hold `amount`
    erc20._transfer(sender, receiver, unsafe_sub(amount, fee))
    if fee > 0:
        erc20._burn(sender, fee)
