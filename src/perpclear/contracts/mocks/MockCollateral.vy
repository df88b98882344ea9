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

implements: IERC20
implements: IERC20Detailed

# Allowances equal to this value are never decremented (infinite approval).
MAX_ALLOWANCE: constant(uint256) = max_value(uint256)

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
owner: public(address)

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(name_: String[64], symbol_: String[32], decimals_: uint8):
    """
    @notice Create the token; the deployer becomes the minting owner.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Number of decimals (e.g. 6 or 18).
    """
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_
    self.owner = msg.sender


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` tokens from the caller to `receiver`.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    @return True on success (reverts otherwise).
    """
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` tokens from `sender` to `receiver` using the caller's
            allowance. An allowance of max uint256 is not decremented.
    @param sender Owner of the tokens.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    @return True on success (reverts otherwise).
    """
    self._spend_allowance(sender, msg.sender, amount)
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Set the allowance of `spender` over the caller's tokens.
    @param spender Account allowed to spend, not the zero address.
    @param amount New allowance (overwrites the previous one).
    @return True on success (reverts otherwise).
    """
    assert spender != empty(address), "token: zero address"
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(receiver: address, amount: uint256):
    """
    @notice Create `amount` new tokens for `receiver`. Owner only.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    """
    assert msg.sender == self.owner, "token: not owner"
    assert receiver != empty(address), "token: zero address"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "token: zero address"
    sender_balance: uint256 = self.balanceOf[sender]
    assert sender_balance >= amount, "token: insufficient balance"
    # cannot underflow: checked just above
    self.balanceOf[sender] = unsafe_sub(sender_balance, amount)
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _spend_allowance(owner_: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner_][spender]
    if allowed == MAX_ALLOWANCE:
        return
    assert allowed >= amount, "token: insufficient allowance"
    # cannot underflow: checked just above
    self.allowance[owner_][spender] = unsafe_sub(allowed, amount)
