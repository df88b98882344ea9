# pragma version ~=0.4.3
"""
@title MockCollateral
@license MIT
@notice Mintable ERC-20 used as the collateral (quote) token on devnets and in
        tests. Decimals are a constructor argument (6 by default in scripts,
        18 is also tested). Only the owner (deployer) can mint.
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
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
)

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
def mint(receiver: address, amount: uint256):
    """
    @notice Create `amount` new tokens for `receiver`. Owner only.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    """
    ownership._check_owner()
    erc20._mint(receiver, amount)
