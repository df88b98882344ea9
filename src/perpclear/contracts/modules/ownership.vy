# pragma version ~=0.4.3
"""
@title perpclear two-step ownership
@license MIT
@notice One owner per contract, written once for every contract that has
        one. Handing governance over takes two steps, so that a mistyped or
        unreachable address can neither capture nor brick it:
        `transfer_ownership(new)` proposes, `accept_ownership()` sent by
        `new` completes. Proposing again replaces the pending owner, and
        proposing the zero address withdraws the proposal. There is no
        renounce: every contract here needs an owner to wind down.
"""

owner: public(address)
pending_owner: public(address)


event OwnershipTransferStarted:
    previous_owner: indexed(address)
    new_owner: indexed(address)


event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


@deploy
def __init__():
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Proposes `new_owner` (zero withdraws the proposal). Owner only;
            nothing changes until `new_owner` calls `accept_ownership`.
    """
    self._check_owner()
    self.pending_owner = new_owner
    log OwnershipTransferStarted(previous_owner=self.owner, new_owner=new_owner)


@external
def accept_ownership():
    """
    @notice Completes a handover: the pending owner becomes the owner.
    """
    assert msg.sender == self.pending_owner and msg.sender != empty(address), "ownership: not pending owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=msg.sender)
    self.owner = msg.sender
    self.pending_owner = empty(address)


@internal
@view
def _check_owner():
    assert msg.sender == self.owner, "ownership: not owner"
