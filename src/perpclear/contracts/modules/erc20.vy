# pragma version ~=0.4.3
"""
@title perpclear ERC-20 book
@license MIT
@notice The ERC-20 state of a token, written once for every token here
        (the insurance vault's shares and the two test tokens): name,
        symbol, supply, balances, allowances and the functions that move
        them. A contract `initializes` it, passes name and symbol to
        `__init__`, keeps `decimals` itself and exports what it offers.
        A contract whose transfers follow other rules (the vault keeps its
        escrow out of reach, the fee token burns a share) writes its own
        `transfer`/`transferFrom` on `_spend_allowance` and `_transfer` and
        exports the rest. An allowance of max uint256 is never decremented.
        Reverts carry the prefix `erc20: `.
"""

from ethereum.ercs import IERC20

# Allowances equal to this value are never decremented (infinite approval).
MAX_ALLOWANCE: constant(uint256) = max_value(uint256)

name: public(String[64])
symbol: public(String[32])
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(name_: String[64], symbol_: String[32]):
    self.name = name_
    self.symbol = symbol_


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from the caller to `receiver`.
    @param receiver Recipient, not the zero address.
    @param amount Amount in smallest units.
    @return True on success (reverts otherwise).
    """
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from `sender` to `receiver` on the caller's
            allowance. An allowance of max uint256 is not decremented.
    @param sender Holder of the amount.
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
    @notice Set the allowance of `spender` over the caller's balance.
    @param spender Account allowed to spend, not the zero address.
    @param amount New allowance (overwrites the previous one).
    @return True on success (reverts otherwise).
    """
    assert spender != empty(address), "erc20: zero address"
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "erc20: zero address"
    sender_balance: uint256 = self.balanceOf[sender]
    assert sender_balance >= amount, "erc20: insufficient balance"
    # cannot underflow: checked just above
    self.balanceOf[sender] = unsafe_sub(sender_balance, amount)
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _spend_allowance(owner_: address, spender: address, amount: uint256):
    allowed: uint256 = self.allowance[owner_][spender]
    if allowed == MAX_ALLOWANCE:
        return
    assert allowed >= amount, "erc20: insufficient allowance"
    # cannot underflow: checked just above
    self.allowance[owner_][spender] = unsafe_sub(allowed, amount)


@internal
def _mint(receiver: address, amount: uint256):
    assert receiver != empty(address), "erc20: zero address"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _burn(owner_: address, amount: uint256):
    owner_balance: uint256 = self.balanceOf[owner_]
    assert owner_balance >= amount, "erc20: insufficient balance"
    # cannot underflow: checked just above; supply is at least every balance
    self.balanceOf[owner_] = unsafe_sub(owner_balance, amount)
    self.totalSupply = unsafe_sub(self.totalSupply, amount)
    log IERC20.Transfer(sender=owner_, receiver=empty(address), value=amount)
