"""Order lifecycle on the OrderBook: expiry, cancel_order, cancel_orders_below.

Unfunded traders on purpose: an order that passes every order check stops at
"clearing: below initial margin" (the positive control).
"""

import ape

from perpclear.model import WAD


def test_settle__expired_order__reverts(system, traders, settle, chain):
    u = system.unit
    now = chain.blocks.head.timestamp
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    with ape.reverts("orders: expired"):
        settle(bid, system.order(traders[1], 0, False, WAD, 2_000 * u, expiry=now - 1), WAD, 2_000 * u)
    with ape.reverts("orders: expired"):
        settle(system.order(traders[1], 0, False, WAD, 2_000 * u, expiry=now - 1), bid, WAD, 2_000 * u)


def test_settle__expiry_is_inclusive(system, traders, settle, chain):
    u = system.unit
    expiry = chain.blocks.head.timestamp + 100
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u, expiry=expiry)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)

    chain.pending_timestamp = expiry  # mined in the order's last second: still valid
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)
    chain.pending_timestamp = expiry + 1
    with ape.reverts("orders: expired"):
        settle(bid, ask, WAD, 2_000 * u)


def test_cancel_order__voids_the_order(system, traders, settle):
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ask = system.order(seller, 0, False, WAD, 2_000 * u)
    bid_hash = ob.order_hash(bid[0].as_tuple())

    for outsider in (seller, system.matcher, system.admin):
        with ape.reverts("orders: not trader"):
            ob.cancel_order(bid[0].as_tuple(), sender=outsider)
    assert not ob.cancelled(bid_hash)

    tx = ob.cancel_order(bid[0].as_tuple(), sender=buyer)
    assert ob.cancelled(bid_hash)
    assert [(e.trader, e.order_hash) for e in tx.decode_logs(ob.OrderCancelled)] == [(buyer.address, bid_hash)]
    with ape.reverts("orders: cancelled"):
        settle(bid, ask, WAD, 2_000 * u)
    with ape.reverts("orders: cancelled"):
        settle(ask, bid, WAD, 2_000 * u)  # as taker too
    # the counterparty's order is untouched: with a fresh bid it gets as far as the margin check
    with ape.reverts("clearing: below initial margin"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_000 * u), WAD, 2_000 * u)


def test_cancel_order__partly_filled_order_stops(system, traders, settle):
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    bid = system.order(buyer, 0, True, 2 * WAD, 2_000 * u)
    settle(bid, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)

    ob.cancel_order(bid[0].as_tuple(), sender=buyer)
    with ape.reverts("orders: cancelled"):
        settle(bid, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    assert ob.filled(ob.order_hash(bid[0].as_tuple())) == WAD  # what was filled stays filled
    assert system.clearing_house.positions(buyer, 0).size == WAD


def test_cancel_order__before_it_is_ever_signed_or_seen(system, traders, settle):
    """A trader can void an order by its contents alone, e.g. one a matcher
    holds that was never submitted."""
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ob.cancel_order(bid[0].as_tuple(), sender=buyer)
    ob.cancel_order(bid[0].as_tuple(), sender=buyer)  # cancelling twice is harmless
    with ape.reverts("orders: cancelled"):
        settle(system.order(seller, 0, False, WAD, 2_000 * u), bid, WAD, 2_000 * u)


def test_cancel_orders_below__voids_lower_nonces(system, traders, settle):
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    ask = system.order(seller, 0, False, WAD, 2_000 * u, nonce=1_000)

    tx = ob.cancel_orders_below(100, sender=buyer)
    assert ob.min_nonce(buyer) == 100
    assert [(e.trader, e.min_nonce) for e in tx.decode_logs(ob.NoncesCancelled)] == [(buyer.address, 100)]

    with ape.reverts("orders: nonce cancelled"):
        settle(system.order(buyer, 0, True, WAD, 2_000 * u, nonce=99), ask, WAD, 2_000 * u)
    with ape.reverts("orders: nonce cancelled"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_000 * u, nonce=99), WAD, 2_000 * u)  # as taker too
    # nonce 100 is the first valid one: it stops at the (unfunded) margin check
    with ape.reverts("clearing: below initial margin"):
        settle(system.order(buyer, 0, True, WAD, 2_000 * u, nonce=100), ask, WAD, 2_000 * u)

    with ape.reverts("orders: nonce not increasing"):
        ob.cancel_orders_below(100, sender=buyer)
    with ape.reverts("orders: nonce not increasing"):
        ob.cancel_orders_below(50, sender=buyer)
    with ape.reverts("orders: nonce not increasing"):
        ob.cancel_orders_below(0, sender=seller)  # from zero, zero is not an increase
    assert ob.min_nonce(buyer) == 100
    assert ob.min_nonce(seller) == 0  # per trader
    ob.cancel_orders_below(101, sender=buyer)
    assert ob.min_nonce(buyer) == 101
