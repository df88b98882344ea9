"""Order lifecycle on the OrderBook: expiry, cancel_order, cancel_orders_below.

Unfunded traders on purpose: an order that passes every order check stops at
"clearing: below initial margin" (the positive control).
"""

import dataclasses

import ape
import pytest

from perpclear.deployment import Deployment
from perpclear.engine import EngineError
from perpclear.model import WAD

from harness import ETH, Mirror, key


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
    assert not ob.cancelled(bid[0].as_tuple())

    tx = ob.cancel_order(bid[0].as_tuple(), sender=buyer)
    assert ob.cancelled(bid[0].as_tuple())
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
    assert ob.filled(bid[0].as_tuple()) == WAD  # what was filled stays filled
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


def test_nonce__names_one_order__another_order_with_it_shares_its_state(system, traders, settle):
    """A nonce is an order's id for its trader: a second order signed with the
    same nonce is filled and cancelled with the first."""
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    bid = system.order(buyer, 0, True, WAD, 2_000 * u, nonce=7_000)
    twin = system.order(buyer, 0, True, WAD, 1_999 * u, nonce=7_000)  # another price, the same nonce
    settle(bid, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    assert (ob.filled(bid[0].as_tuple()), ob.filled(twin[0].as_tuple())) == (WAD, WAD)
    with ape.reverts("orders: overfilled"):
        settle(twin, system.order(seller, 0, False, WAD, 1_999 * u), WAD, 1_999 * u)
    # cancelling an order filled whole leaves it filled: nothing is left to void
    ob.cancel_order(bid[0].as_tuple(), sender=buyer)
    assert ob.filled(bid[0].as_tuple()) == WAD and not ob.cancelled(bid[0].as_tuple())
    assert system.clearing_house.positions(buyer, 0).size == WAD

    half = system.order(buyer, 0, True, 2 * WAD, 2_000 * u, nonce=7_001)
    other = system.order(buyer, 0, True, 2 * WAD, 2_000 * u, nonce=7_001)
    settle(half, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    ob.cancel_order(other[0].as_tuple(), sender=buyer)
    assert ob.cancelled(half[0].as_tuple()) and ob.filled(half[0].as_tuple()) == WAD
    with ape.reverts("orders: cancelled"):
        settle(half, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)


def test_nonce__neighbours_in_one_word_and_across_words_are_independent(system, traders, settle):
    """A trader's nonces share a word 128 at a time (two bits each): filling one
    whole, partly or cancelling it never changes another, at either edge of a
    word and at the largest nonce."""
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 100_000 * u)

    def ask(size):
        return system.order(seller, 0, False, size, 2_000 * u)

    part = system.order(buyer, 0, True, 3 * WAD, 2_000 * u, nonce=127)  # the top of word 0
    whole = system.order(buyer, 0, True, WAD, 2_000 * u, nonce=128)  # the bottom of word 1
    void = system.order(buyer, 0, True, WAD, 2_000 * u, nonce=126)
    last = system.order(buyer, 0, True, WAD, 2_000 * u, nonce=2**256 - 1)
    settle(part, ask(WAD), WAD, 2_000 * u)
    settle(whole, ask(WAD), WAD, 2_000 * u)
    ob.cancel_order(void[0].as_tuple(), sender=buyer)
    settle(last, ask(WAD), WAD, 2_000 * u)
    assert [ob.filled(o[0].as_tuple()) for o in (part, whole, void, last)] == [WAD, WAD, 0, WAD]
    assert [ob.cancelled(o[0].as_tuple()) for o in (part, whole, void, last)] == [False, False, True, False]

    # the partly filled order fills on, to its size and not a wei more
    settle(part, ask(WAD), WAD, 2_000 * u)
    with ape.reverts("orders: overfilled"):
        settle(part, ask(2 * WAD), WAD + 1, 2_000 * u)
    settle(part, ask(WAD), WAD, 2_000 * u)
    assert ob.filled(part[0].as_tuple()) == 3 * WAD
    with ape.reverts("orders: overfilled"):
        settle(part, ask(WAD), 1, 2_000 * u)
    with ape.reverts("orders: cancelled"):
        settle(void, ask(WAD), WAD, 2_000 * u)
    assert system.clearing_house.positions(buyer, 0).size == 5 * WAD


def test_attach__a_later_session_never_reuses_a_nonce():
    """A session attached to a deployment (a script run on its manifest) signs
    with nonces no earlier session used, so the orders of accounts that every
    session trades (the market maker's) keep filling; counting from zero
    again would replay the first session's nonces and be refused."""
    sim = Mirror.in_process(6)
    u = sim.u
    with sim.active():
        d = sim.d
        buyer, seller = key(9_700_001), key(9_700_002)
        for account in (buyer, seller):
            sim.fund(account.address, 10_000 * u)

        def trade(session):
            return session.engine.send([session.order_pair(buyer, seller, ETH, WAD, 2_000 * u, session.next_nonce())])

        first = d.nonce + 1
        trade(d)
        manifest = {"contracts": {k: {"address": a} for k, a in d.addresses().items()},
                    "decimals": d.decimals, "markets": [{}] * d.market_count}
        later = Deployment.attach(d.engine, manifest, d.roles)
        assert later.nonce > first
        trade(later)
        with pytest.raises(EngineError, match="orders: overfilled"):
            trade(dataclasses.replace(later, nonce=first - 1))
