"""Two-step ownership (modules/ownership.vy), the same in every contract that
has an owner: the clearing house, the order book, the oracle and the vault.

A proposal changes nothing until the proposed address accepts, so a mistyped
or unreachable address can neither capture nor brick governance; the owner
can replace or withdraw a proposal; only the pending owner can accept; after
it, the old owner has no power left."""

import ape
import pytest
from ape.utils import ZERO_ADDRESS

CONTRACTS = ["clearing_house", "order_book", "oracle", "vault"]


def owner_only(system, name, sender):
    """One owner-only call of each contract."""
    c = getattr(system, name)
    return {
        "clearing_house": lambda: c.set_fee_recipient(sender, sender=sender),
        "order_book": lambda: c.set_matcher(sender, True, sender=sender),
        "oracle": lambda: c.set_keeper(sender, True, sender=sender),
        "vault": lambda: c.set_cooldown(60, sender=sender),
    }[name]()


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
@pytest.mark.parametrize("name", CONTRACTS)
def test_ownership__two_steps(system, admin, traders, name):
    c = getattr(system, name)
    new, mistyped, outsider = traders[0], traders[1], traders[2]
    assert (c.owner(), c.pending_owner()) == (admin.address, ZERO_ADDRESS)
    with ape.reverts("ownership: not owner"):
        c.transfer_ownership(outsider, sender=outsider)

    # A mistyped proposal changes nothing and can be replaced.
    tx = c.transfer_ownership(mistyped, sender=admin)
    assert [(e.previous_owner, e.new_owner) for e in tx.decode_logs(c.OwnershipTransferStarted)] == [
        (admin.address, mistyped.address)
    ]
    assert (c.owner(), c.pending_owner()) == (admin.address, mistyped.address)
    owner_only(system, name, admin)  # the owner still governs
    c.transfer_ownership(new, sender=admin)
    with ape.reverts("ownership: not pending owner"):
        c.accept_ownership(sender=mistyped)
    with ape.reverts("ownership: not pending owner"):
        c.accept_ownership(sender=admin)

    tx = c.accept_ownership(sender=new)
    assert [(e.previous_owner, e.new_owner) for e in tx.decode_logs(c.OwnershipTransferred)] == [
        (admin.address, new.address)
    ]
    assert (c.owner(), c.pending_owner()) == (new.address, ZERO_ADDRESS)
    with ape.reverts("ownership: not owner"):
        owner_only(system, name, admin)
    owner_only(system, name, new)
    with ape.reverts("ownership: not pending owner"):
        c.accept_ownership(sender=new)  # nothing pending any more


@pytest.mark.parametrize("decimals", [6], ids=["dec6"], indirect=True)
@pytest.mark.parametrize("name", CONTRACTS)
def test_ownership__zero_withdraws_a_proposal(system, admin, traders, name):
    c = getattr(system, name)
    c.transfer_ownership(traders[0], sender=admin)
    c.transfer_ownership(ZERO_ADDRESS, sender=admin)
    assert (c.owner(), c.pending_owner()) == (admin.address, ZERO_ADDRESS)
    with ape.reverts("ownership: not pending owner"):
        c.accept_ownership(sender=traders[0])
    with ape.reverts("ownership: not pending owner"):
        c.accept_ownership(sender=traders[1])
