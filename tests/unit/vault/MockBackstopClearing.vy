# pragma version ~=0.4.3
"""
@title MockBackstopClearing
@license MIT
@notice Test double of the clearing house, compiled from the vault tests only
        (not a project contract): margin accounts with settable equity, the
        deposit/withdraw/health surface the vault uses as backstop liquidator
        (and `oracle`/`open_markets`, read before deposits),
        and `draw()` that calls `vault.cover()` and records what was paid.
@custom:kill Test double; nothing to stop.
"""

from ethereum.ercs import IERC20


interface IVault:
    def cover(amount: uint256) -> uint256: nonpayable


struct Health:  # the clearing house's (IClearingHouse.Health): equity is what the vault reads
    equity: int256
    maintenance: uint256
    initial: uint256


token: public(address)
vault: public(address)
equity: public(HashMap[address, int256])
last_paid: public(uint256)
# What the vault reads before a deposit to see whether its backstop trades a
# stale market: no positions here, so never.
oracle: public(address)
open_markets: public(HashMap[address, uint256])


@deploy
def __init__(token_: address, vault_: address):
    self.token = token_
    self.vault = vault_


@external
def deposit(amount: uint256):
    assert extcall IERC20(self.token).transferFrom(msg.sender, self, amount)
    self.equity[msg.sender] += convert(amount, int256)


@external
def withdraw(amount: uint256):
    assert self.equity[msg.sender] >= convert(amount, int256), "clearing: insufficient equity"
    self.equity[msg.sender] -= convert(amount, int256)
    assert extcall IERC20(self.token).transfer(msg.sender, amount)


@external
@view
def health(account: address) -> Health:
    return Health(equity=self.equity[account], maintenance=0, initial=0)


@external
def set_equity(account: address, new_equity: int256):
    """Simulate PnL of the account (tokens are not moved)."""
    self.equity[account] = new_equity


@external
def draw(amount: uint256) -> uint256:
    paid: uint256 = extcall IVault(self.vault).cover(amount)
    self.last_paid = paid
    return paid
