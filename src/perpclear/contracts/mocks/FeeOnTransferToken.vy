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

implements: IERC20
implements: IERC20Detailed

# Allowances equal to this value are never decremented (infinite approval).
MAX_ALLOWANCE: constant(uint256) = max_value(uint256)
# Fee burnt on every transfer, in basis points (100% = 10_000).
FEE_BPS: constant(uint256) = 100
BPS: constant(uint256) = 10_000

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
    @notice Move `amount` tokens from the caller to `receiver`; 1% is burnt.
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
            allowance; 1% is burnt. The allowance is charged the full
            `amount`. An allowance of max uint256 is not decremented.
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
    # rounded down: dust amounts (< 100 units) move without a fee
    fee: uint256 = amount * FEE_BPS // BPS
    # cannot underflow: fee <= amount and amount <= sender_balance
    received: uint256 = unsafe_sub(amount, fee)
    self.balanceOf[sender] = unsafe_sub(sender_balance, amount)
    self.balanceOf[receiver] += received
    # cannot underflow: fee was part of the sender's balance, counted in supply
    self.totalSupply = unsafe_sub(self.totalSupply, fee)
    log IERC20.Transfer(sender=sender, receiver=receiver, value=received)
    if fee > 0:
        log IERC20.Transfer(sender=sender, receiver=empty(address), value=fee)


@internal
def _spend_allowance(owner_: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner_][spender]
    if allowed == MAX_ALLOWANCE:
        return
    assert allowed >= amount, "token: insufficient allowance"
    # cannot underflow: checked just above
    self.allowance[owner_][spender] = unsafe_sub(allowed, amount)
