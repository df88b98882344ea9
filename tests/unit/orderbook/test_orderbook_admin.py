"""OrderBook governance (owner, matchers) and the wiring between the order book
and the clearing house (`set_order_book`, who may call `execute_fill`)."""

import ape

from perpclear.model import WAD

ZERO = "0x0000000000000000000000000000000000000000"


# ---------------------------------------------------------------- deployment and wiring


def test_deploy__wires_order_book_and_clearing_house(system, admin, matcher, keeper):
    ob, ch = system.order_book, system.clearing_house
    assert ob.owner() == admin.address  # the deployer
    assert ob.clearing_house() == ch.address
    assert ch.order_book() == ob.address
    assert ob.is_matcher(matcher)
    assert not ob.is_matcher(admin) and not ob.is_matcher(keeper)


def test_deploy__zero_clearing_house__reverts(project, admin, system):
    with ape.reverts("orders: zero address"):
        project.OrderBook.deploy(ZERO, sender=admin)


def test_set_order_book__once_by_the_owner(project, admin, traders, system):
    ch = project.ClearingHouse.deploy(system.token, system.oracle, system.vault, admin, system.timelock, sender=admin)
    book = project.OrderBook.deploy(ch, sender=admin)
    assert ch.order_book() == ZERO

    with ape.reverts("ownership: not owner"):
        ch.set_order_book(book, sender=traders[0])
    with ape.reverts("clearing: zero address"):
        ch.set_order_book(ZERO, sender=admin)
    tx = ch.set_order_book(book, sender=admin)
    assert ch.order_book() == book.address
    assert [e.order_book for e in tx.decode_logs(ch.OrderBookSet)] == [book.address]

    with ape.reverts("clearing: order book set"):
        ch.set_order_book(traders[0], sender=admin)
    with ape.reverts("clearing: order book set"):
        ch.set_order_book(book, sender=admin)  # not even the same one again
    assert ch.order_book() == book.address


def test_set_order_book__deployed_system_cannot_be_rewired(system, admin, traders):
    ch = system.clearing_house
    with ape.reverts("clearing: order book set"):
        ch.set_order_book(traders[0], sender=admin)
    with ape.reverts("ownership: not owner"):
        ch.set_order_book(traders[0], sender=traders[0])
    # a new owner of the clearing house cannot rewire it either
    ch.transfer_ownership(traders[1], sender=admin)
    ch.accept_ownership(sender=traders[1])
    with ape.reverts("clearing: order book set"):
        ch.set_order_book(traders[0], sender=traders[1])
    assert ch.order_book() == system.order_book.address


def test_execute_fill__anyone_but_the_order_book__reverts(system, admin, matcher, keeper, traders):
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    args = (buyer, seller, 0, WAD, 2_000 * u, True, False, False)
    # the owner, the matcher, a keeper, the traders themselves, the order book's owner
    for sender in (admin, matcher, keeper, buyer, seller):
        with ape.reverts("clearing: not order book"):
            ch.execute_fill(*args, sender=sender)
    # the access check comes before any argument check
    with ape.reverts("clearing: not order book"):
        ch.execute_fill(buyer, seller, 99, 0, 0, True, False, False, sender=matcher)
    assert ch.positions(buyer, 0).size == 0
    system.trade(buyer, seller, 0, WAD, 2_000 * u)  # through the order book it books
    assert ch.positions(buyer, 0).size == WAD


# ---------------------------------------------------------------- matchers


def test_set_matcher__owner_allows_and_revokes_with_events(system, admin, traders):
    ob = system.order_book
    newcomer = traders[9]
    tx = ob.set_matcher(newcomer, True, sender=admin)
    assert ob.is_matcher(newcomer)
    assert [(e.matcher, e.allowed) for e in tx.decode_logs(ob.MatcherSet)] == [(newcomer.address, True)]
    tx = ob.set_matcher(newcomer, False, sender=admin)
    assert not ob.is_matcher(newcomer)
    assert [(e.matcher, e.allowed) for e in tx.decode_logs(ob.MatcherSet)] == [(newcomer.address, False)]


def test_set_matcher__not_owner_or_zero_address__reverts(system, admin, matcher, traders):
    ob = system.order_book
    for sender in (traders[0], matcher):  # not even a matcher adds matchers
        with ape.reverts("ownership: not owner"):
            ob.set_matcher(traders[0], True, sender=sender)
        with ape.reverts("ownership: not owner"):
            ob.set_matcher(matcher, False, sender=sender)
    with ape.reverts("orders: zero address"):
        ob.set_matcher(ZERO, True, sender=admin)
    assert not ob.is_matcher(traders[0]) and ob.is_matcher(matcher)


def test_set_matcher__clearing_house_owner_is_not_enough(system, admin, traders):
    """The order book has an owner of its own: handing over the clearing house
    does not hand over the matcher list."""
    ch, ob = system.clearing_house, system.order_book
    ch.transfer_ownership(traders[0], sender=admin)
    ch.accept_ownership(sender=traders[0])
    with ape.reverts("ownership: not owner"):
        ob.set_matcher(traders[1], True, sender=traders[0])
    ob.set_matcher(traders[1], True, sender=admin)
    assert ob.is_matcher(traders[1])


