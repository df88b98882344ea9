"""OrderBook.settle: the matcher, the argument checks, fills per order and the
OrderFilled event.

Many revert tests use unfunded traders on purpose: every order check runs before
the clearing house books the fill, so a pair of orders that passes them all stops
at "clearing: below initial margin" — the positive control, without funding txs.
"""

import ape

from perpclear.model import WAD, MarketParams


def _args(maker, taker):
    """settle's first four arguments from two (order, signature) pairs."""
    (maker_order, maker_sig), (taker_order, taker_sig) = maker, taker
    return maker_order.as_tuple(), maker_sig, taker_order.as_tuple(), taker_sig


# ---------------------------------------------------------------- the matcher


def test_settle__not_matcher__reverts(system, traders, admin, keeper):
    u, ob = system.unit, system.order_book
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    # not the owner of either contract, nor a trader, nor the clearing house's keeper
    for sender in (traders[0], admin, keeper):
        with ape.reverts("orders: not matcher"):
            ob.settle(*_args(bid, ask), WAD, 2_000 * u, sender=sender)
    # the matcher check comes first: even a zero size is refused as "not matcher"
    with ape.reverts("orders: not matcher"):
        ob.settle(*_args(bid, ask), 0, 2_000 * u, sender=admin)
    with ape.reverts("clearing: below initial margin"):
        ob.settle(*_args(bid, ask), WAD, 2_000 * u, sender=system.matcher)


def test_settle__revoked_matcher__reverts_and_new_matcher_settles(system, admin, matcher, traders, settle):
    u, ob = system.unit, system.order_book
    newcomer = traders[9]
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)

    ob.set_matcher(matcher, False, sender=admin)
    with ape.reverts("orders: not matcher"):
        settle(bid, ask, WAD, 2_000 * u)
    ob.set_matcher(newcomer, True, sender=admin)
    with ape.reverts("clearing: below initial margin"):  # the same orders, a new matcher
        settle(bid, ask, WAD, 2_000 * u, sender=newcomer)


# ---------------------------------------------------------------- argument checks


def test_settle__zero_size__reverts(system, traders, settle):
    u = system.unit
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    with ape.reverts("orders: zero size"):
        settle(bid, ask, 0, 2_000 * u)
    # before any order check: even an expired, badly signed pair is refused for its size
    stale = (system.order(traders[0], 0, True, WAD, 2_000 * u, expiry=1)[0], b"\x01" * 65)
    with ape.reverts("orders: zero size"):
        settle(stale, ask, 0, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, 1, 2_000 * u)


def test_settle__mismatched_orders__reverts(system, traders, settle):
    u, buyer, seller = system.unit, traders[0], traders[1]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    with ape.reverts("orders: market mismatch"):
        settle(bid, system.order(seller, 1, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("orders: market mismatch"):
        settle(system.order(seller, 1, False, WAD, 2_000 * u), bid, WAD, 2_000 * u)
    with ape.reverts("orders: same side"):
        settle(bid, system.order(seller, 0, True, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("orders: same side"):
        settle(system.order(buyer, 0, False, WAD, 2_000 * u), system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("orders: self trade"):
        settle(bid, system.order(buyer, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)


def test_settle__price_outside_limit__reverts(system, traders, settle):
    u, buyer, seller = system.unit, traders[0], traders[1]
    bid = system.order(buyer, 0, True, WAD, 1_999 * u)
    ask = system.order(seller, 0, False, WAD, 2_001 * u)
    with ape.reverts("orders: price outside limit"):
        settle(bid, system.order(seller, 0, False, WAD, 1_990 * u), WAD, 1_999 * u + 1)  # above the bid (maker)
    with ape.reverts("orders: price outside limit"):
        settle(system.order(seller, 0, False, WAD, 1_990 * u), bid, WAD, 1_999 * u + 1)  # above the bid (taker)
    with ape.reverts("orders: price outside limit"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_010 * u), WAD, 2_001 * u - 1)  # below the ask (maker)
    with ape.reverts("orders: price outside limit"):
        settle(system.order(buyer, 0, True, WAD, 2_010 * u), ask, WAD, 2_001 * u - 1)  # below the ask (taker)
    with ape.reverts("orders: price outside limit"):
        settle(bid, ask, WAD, 2_000 * u)  # crossed the wrong way: no price fits both
    # either limit itself is a valid price: the orders pass and stop at the (unfunded) margin check
    with ape.reverts("clearing: below initial margin"):
        settle(bid, system.order(seller, 0, False, WAD, 1_990 * u), WAD, 1_999 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_010 * u), WAD, 2_001 * u)


# ---------------------------------------------------------------- fills per order


def test_settle__logs_order_filled_with_fees_and_hashes(system, traders, settle):
    ch, ob, u = system.clearing_house, system.order_book, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    ask = system.order(seller, 0, False, 2 * WAD, 1_995 * u)  # the seller makes
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    collateral = (ch.collateral(buyer), ch.collateral(seller))

    tx = settle(ask, bid, WAD, 1_997 * u)
    (event,) = tx.decode_logs(ob.OrderFilled)
    buyer_fee = collateral[0] - ch.collateral(buyer)
    seller_fee = collateral[1] - ch.collateral(seller)
    assert 0 < seller_fee < buyer_fee  # maker 2 bps, taker 5 bps of 1997
    assert (event.market, event.buyer, event.seller, event.size, event.price) == (
        0, buyer.address, seller.address, WAD, 1_997 * u,
    )
    assert (event.buyer_fee, event.seller_fee) == (buyer_fee, seller_fee)
    assert (event.maker_hash, event.taker_hash) == (ob.order_hash(ask[0].as_tuple()), ob.order_hash(bid[0].as_tuple()))
    assert event.contract_address == ob.address
    # the clearing house logs the positions, not the fill
    assert len(tx.decode_logs(ch.PositionChanged)) == 2


def test_settle__partial_fills_of_one_maker_order(system, traders, settle):
    ch, ob, u = system.clearing_house, system.order_book, system.unit
    maker, first, second = traders[:3]
    for account in (maker, first, second):
        system.fund(account, 10_000 * u)

    # The maker offers 3 ETH at 1995; two takers lift 1 and then 2.
    ask = system.order(maker, 0, False, 3 * WAD, 1_995 * u)
    bid_1 = system.order(first, 0, True, WAD, 2_000 * u)
    settle(ask, bid_1, WAD, 1_995 * u)
    assert ob.filled(ask[0].as_tuple()) == WAD
    assert ob.filled(bid_1[0].as_tuple()) == WAD

    bid_2 = system.order(second, 0, True, 5 * WAD, 2_000 * u)
    settle(ask, bid_2, 2 * WAD, 1_995 * u)
    assert ob.filled(ask[0].as_tuple()) == 3 * WAD
    assert ob.filled(bid_2[0].as_tuple()) == 2 * WAD  # 3 of its 5 remain
    assert ch.positions(maker, 0).size == -3 * WAD
    assert (ch.positions(first, 0).size, ch.positions(second, 0).size) == (WAD, 2 * WAD)

    # nothing is left: even one more wei overfills the maker order
    with ape.reverts("orders: overfilled"):
        settle(ask, system.order(first, 0, True, WAD, 2_000 * u), 1, 1_995 * u)
    # the taker's remaining 3 fill against another maker, but not one wei more
    other_ask = system.order(first, 0, False, 4 * WAD, 1_995 * u)
    with ape.reverts("orders: overfilled"):
        settle(other_ask, bid_2, 3 * WAD + 1, 1_995 * u)
    settle(other_ask, bid_2, 3 * WAD, 1_995 * u)
    assert ob.filled(bid_2[0].as_tuple()) == 5 * WAD


def test_settle__replayed_orders__overfilled(system, traders, settle):
    ch, ob, u = system.clearing_house, system.order_book, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ask = system.order(seller, 0, False, 3 * WAD, 2_000 * u)

    settle(bid, ask, WAD, 2_000 * u)
    with ape.reverts("orders: overfilled"):
        settle(bid, ask, WAD, 2_000 * u)  # the same pair again
    with ape.reverts("orders: overfilled"):
        settle(ask, bid, 1, 2_000 * u)  # the bid is done, even for one wei, as taker too
    assert ob.filled(bid[0].as_tuple()) == WAD
    assert ob.filled(ask[0].as_tuple()) == WAD
    assert ch.positions(buyer, 0).size == WAD


def test_settle__failed_fill_books_nothing(system, traders, settle):
    """A fill the clearing house refuses leaves the order book untouched: the
    orders can be filled later in full."""
    ob, u = system.order_book, system.unit
    buyer, seller = traders[:2]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ask = system.order(seller, 0, False, WAD, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)
    assert ob.filled(bid[0].as_tuple()) == 0
    assert ob.filled(ask[0].as_tuple()) == 0

    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    settle(bid, ask, WAD, 2_000 * u)
    assert ob.filled(bid[0].as_tuple()) == WAD
    assert system.clearing_house.positions(buyer, 0).size == WAD


# ---------------------------------------------------------------- fee caps


def test_settle__fee_raised_after_signing__order_keeps_its_max(system, traders, settle, admin):
    """Seen before: an order signed under a 5 bps taker fee filled at whatever
    fee the owner set later (up to 10 %). Each order now carries `max_fee_bps`:
    a fill whose fee exceeds it reverts, on either side; an order signed for the
    new fee fills, and a fee exactly at the cap is accepted."""
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    ask = system.order(seller, 0, False, 2 * WAD, 2_000 * u, max_fee_bps=2)  # maker fee today: 2 bps
    bid = system.order(buyer, 0, True, WAD, 2_000 * u, max_fee_bps=5)  # taker fee today: 5 bps
    ch.set_market_params(0, MarketParams(taker_fee_bps=100).as_tuple(), sender=admin)  # the owner raises it to 1 %
    with ape.reverts("orders: fee above the order's max"):
        settle(ask, bid, WAD, 2_000 * u)

    bid = system.order(buyer, 0, True, WAD, 2_000 * u, max_fee_bps=100)  # signed for the new fee
    collateral = ch.collateral(buyer), ch.collateral(seller)
    settle(ask, bid, WAD, 2_000 * u)
    assert collateral[0] - ch.collateral(buyer) == 20 * u  # 1 % of 2,000: exactly the cap
    assert collateral[1] - ch.collateral(seller) == 2 * u // 5  # 2 bps

    ch.set_market_params(0, MarketParams(taker_fee_bps=100, maker_fee_bps=3).as_tuple(), sender=admin)
    bid = system.order(buyer, 0, True, WAD, 2_000 * u, max_fee_bps=100)
    with ape.reverts("orders: fee above the order's max"):  # now the maker's cap binds
        settle(ask, bid, WAD, 2_000 * u)


def test_settle__fee_cap_rounds_like_the_fee(system, traders, settle, admin):
    """The cap is ceil(notional x max_fee_bps / 10,000), the clearing house's own
    rounding of the fee: a fee at the cap's bps never fails on a rounding unit,
    and a cap of 0 refuses any positive fee (a dust fill's fee rounds up to 1)."""
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    dust = WAD // u  # notional 2,000 smallest units: 5 bps = 1 unit (ceil of 1.0), 2 bps = 1 (ceil of 0.4)
    ask = system.order(seller, 0, False, dust, 2_000 * u, max_fee_bps=2)
    bid = system.order(buyer, 0, True, dust, 2_000 * u, max_fee_bps=5)
    before = ch.collateral(buyer), ch.collateral(seller)
    settle(ask, bid, dust, 2_000 * u)
    assert (before[0] - ch.collateral(buyer), before[1] - ch.collateral(seller)) == (1, 1)
    free = system.order(buyer, 0, True, dust, 2_000 * u, max_fee_bps=0)
    ask = system.order(seller, 0, False, dust, 2_000 * u, max_fee_bps=2)
    with ape.reverts("orders: fee above the order's max"):
        settle(ask, free, dust, 2_000 * u)
    ch.set_market_params(0, MarketParams(taker_fee_bps=0).as_tuple(), sender=admin)
    settle(ask, free, dust, 2_000 * u)  # a fee-free market fills a cap of 0
