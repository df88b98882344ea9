"""What the clearing house checks when a fill is booked (`execute_fill`).

Fills are signed orders settled through `system.order_book` (the only caller
`execute_fill` accepts); the order rules themselves (signatures, cancels,
nonces, fills per order, matchers) are tested in tests/unit/orderbook/.
Here: positions and fees against the exact model, maker and taker sides,
reduce-only, the open-interest cap, margin, flips, the oracle, and the size and
price bounds. The `direct` clearing house (its order book is a plain account)
reaches the checks that the order book never lets through.

Many revert tests use unfunded traders on purpose: every other check runs
before the margin check, so a fill that passes them all stops at
"clearing: below initial margin" — the positive control, without funding txs.
"""

from dataclasses import replace

import ape

from perpclear.model import WAD

MAX_SIZE = MAX_PRICE = 10**30


def _assert_matches_model(system, model, accounts, markets=(0, 1)):
    ch = system.clearing_house
    for account in accounts:
        assert ch.collateral(account) == model.collateral.get(str(account), 0)
        for market in markets:
            on_chain, expected = ch.positions(account, market), model.position(str(account), market)
            assert (on_chain.size, on_chain.open_notional) == (expected.size, expected.open_notional)
    for market in markets:
        assert system.lens.markets(market).long_open_interest == model.markets[market].long_open_interest
    assert ch.total_collateral() == model.total_collateral
    assert ch.total_open_notional() == model.total_open_notional
    assert (ch.protocol_fees(), ch.insurance_fees()) == (model.protocol_fees, model.insurance_fees)


def _fund(system, model, *accounts, amount):
    for account in accounts:
        system.fund(account, amount)
        model.deposit(str(account), amount)


def _filled_events(system, tx):
    return [
        (e.market, e.buyer, e.seller, e.size, e.price, e.buyer_fee, e.seller_fee, e.maker_hash, e.taker_hash)
        for e in tx.decode_logs(system.order_book.OrderFilled)
    ]


# ---------------------------------------------------------------- positions and fees


def test_settle__open_then_reduce__matches_model(system, traders, settle, model):
    ch, ob, u = system.clearing_house, system.order_book, system.unit
    alice_long, bob_short = traders[:2]
    _fund(system, model, alice_long, bob_short, amount=5_000 * u)

    # Fill 1: the long's bid (maker) meets the short's ask (taker): 1.5 ETH at 2001.37.
    # Notional 3002.055; maker fee 2 bps = 0.600411, taker 5 bps = 1.5010275 (rounded up).
    price = 200_137 * u // 100
    bid = system.order(alice_long, 0, True, 3 * WAD // 2, 2_002 * u)
    ask = system.order(bob_short, 0, False, 2 * WAD, 2_001 * u)  # 2 offered, 1.5 filled
    tx = settle(bid, ask, 3 * WAD // 2, price)
    fees = model.trade(str(alice_long), str(bob_short), 0, 3 * WAD // 2, price, maker=str(alice_long))
    _assert_matches_model(system, model, (alice_long, bob_short))
    assert 0 < fees[0] < fees[1]  # the buyer made, the seller took

    # The order book logs the fees the clearing house returned.
    assert _filled_events(system, tx) == [
        (
            0, alice_long.address, bob_short.address, 3 * WAD // 2, price, fees[0], fees[1],
            ob.order_hash(bid[0].as_tuple()), ob.order_hash(ask[0].as_tuple()),
        )
    ]
    changes = [(e.account, e.market, e.size, e.open_notional, e.realized_pnl) for e in tx.decode_logs(ch.PositionChanged)]
    assert changes == [
        (alice_long.address, 0, 3 * WAD // 2, model.position(str(alice_long), 0).open_notional, 0),
        (bob_short.address, 0, -3 * WAD // 2, model.position(str(bob_short), 0).open_notional, 0),
    ]

    # Fill 2, the seller as maker: the long's ask (maker) sells 0.4 ETH at 1998.11 to
    # the short's bid (taker). The long releases 0.4/1.5 of its cost basis (rounded up)
    # and realises ~-1.304; the maker fee is now the seller's.
    price = 199_811 * u // 100
    before = {a: model.collateral[str(a)] for a in (alice_long, bob_short)}
    ask = system.order(alice_long, 0, False, 2 * WAD // 5, price)
    bid = system.order(bob_short, 0, True, 2 * WAD // 5, price)
    tx = settle(ask, bid, 2 * WAD // 5, price)
    fees = model.trade(str(bob_short), str(alice_long), 0, 2 * WAD // 5, price, maker=str(alice_long))
    _assert_matches_model(system, model, (alice_long, bob_short))
    assert 0 < fees[1] < fees[0]  # the seller made, the buyer took
    assert _filled_events(system, tx) == [
        (
            0, bob_short.address, alice_long.address, 2 * WAD // 5, price, fees[0], fees[1],
            ob.order_hash(ask[0].as_tuple()), ob.order_hash(bid[0].as_tuple()),
        )
    ]
    realized = {e.account: e.realized_pnl for e in tx.decode_logs(ch.PositionChanged)}
    assert realized == {
        bob_short.address: model.collateral[str(bob_short)] - before[bob_short] + fees[0],
        alice_long.address: model.collateral[str(alice_long)] - before[alice_long] + fees[1],
    }
    assert realized[alice_long.address] < 0 < realized[bob_short.address]
    assert ch.positions(alice_long, 0).size == 11 * WAD // 10


def test_settle__position_flip__realises_model_pnl(system, traders, settle, model):
    ch, u = system.clearing_house, system.unit
    flipper, other = traders[:2]
    _fund(system, model, flipper, other, amount=10_000 * u)

    # Long 2.000000000000000007 ETH at 2000.123457, then one sell of 3 at 2100.987654:
    # closes the long (+~201.73 realised) and opens a short of ~1 at the same price.
    size = 2 * WAD + 7
    open_price, flip_price = 2_000_123_457 * u // 10**6, 2_100_987_654 * u // 10**6
    settle(
        system.order(flipper, 0, True, size, open_price),
        system.order(other, 0, False, size, open_price),
        size,
        open_price,
    )
    model.trade(str(flipper), str(other), 0, size, open_price, maker=str(flipper))

    before = {a: model.collateral[str(a)] for a in (flipper, other)}
    tx = settle(
        system.order(other, 0, True, 3 * WAD, flip_price),  # the other side flips too: short 2 -> long 1
        system.order(flipper, 0, False, 3 * WAD, flip_price),
        3 * WAD,
        flip_price,
    )
    fees = model.trade(str(other), str(flipper), 0, 3 * WAD, flip_price, maker=str(other))
    _assert_matches_model(system, model, (flipper, other))

    assert ch.positions(flipper, 0).size == -(WAD - 7)
    assert ch.positions(other, 0).size == WAD - 7
    realized = {e.account: e.realized_pnl for e in tx.decode_logs(ch.PositionChanged)}
    expected_flipper = model.collateral[str(flipper)] - before[flipper] + fees[1]
    assert realized[flipper.address] == expected_flipper
    assert realized[other.address] == model.collateral[str(other)] - before[other] + fees[0]
    # ~ (2100.987654 - 2000.123457) * 2 = ~201.73, rounded down
    assert 201 * u < expected_flipper < 202 * u


def test_execute_fill__returns_the_model_fees(system, direct, traders, model):
    """execute_fill's return value (what the order book logs) is the pair of fees
    the model charges, for either side as maker."""
    u = system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        direct.system.fund(account, 10_000 * u)
        model.deposit(str(account), 10_000 * u)
    size, price = 3 * WAD // 7, 2_000_123_457 * u // 10**6

    for buyer_is_maker in (True, False):
        returned = direct.fill(buyer, seller, 0, size, price, buyer_is_maker=buyer_is_maker, call=True)
        direct.fill(buyer, seller, 0, size, price, buyer_is_maker=buyer_is_maker)
        maker = buyer if buyer_is_maker else seller
        fees = model.trade(str(buyer), str(seller), 0, size, price, maker=str(maker))
        assert returned == tuple(fees)
        assert (fees[0] < fees[1]) == buyer_is_maker
        _assert_matches_model(direct.system, model, (buyer, seller))
    assert direct.system.conservation_errors() == []


# ---------------------------------------------------------------- size, price and market bounds


def test_settle__size_price_and_market_bounds__reverts(system, traders, settle):
    # Orders wide enough for every bound: the clearing house, not the order book, refuses.
    bid = system.order(traders[0], 0, True, MAX_SIZE + 1, MAX_PRICE + 1)
    ask = system.order(traders[1], 0, False, MAX_SIZE + 1, 0)
    with ape.reverts("clearing: size too large"):
        settle(bid, ask, MAX_SIZE + 1, 2_000)
    with ape.reverts("clearing: zero price"):
        settle(bid, ask, WAD, 0)
    with ape.reverts("clearing: price too large"):
        settle(bid, ask, WAD, MAX_PRICE + 1)
    with ape.reverts("clearing: unknown market"):
        settle(
            system.order(traders[0], 2, True, WAD, 2_000),
            system.order(traders[1], 2, False, WAD, 2_000),
            WAD,
            2_000,
        )
    # the bounds themselves are valid: the unfunded traders stop at the margin check
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, MAX_SIZE, 2_000)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, MAX_PRICE)


def test_execute_fill__bounds_the_order_book_never_sends__reverts(system, direct, traders):
    buyer, seller = traders[:2]
    # the order book refuses a zero size first ("orders: zero size"); the clearing house checks it too
    with ape.reverts("clearing: zero size"):
        direct.fill(buyer, seller, 0, 0, 2_000)
    # the market is checked before the sizes
    with ape.reverts("clearing: unknown market"):
        direct.fill(buyer, seller, 2, 0, 0)
    with ape.reverts("clearing: size too large"):
        direct.fill(buyer, seller, 0, MAX_SIZE + 1, 2_000)
    with ape.reverts("clearing: zero price"):
        direct.fill(buyer, seller, 1, WAD, 0)
    with ape.reverts("clearing: price too large"):
        direct.fill(buyer, seller, 1, WAD, MAX_PRICE + 1)
    with ape.reverts("clearing: below initial margin"):  # unfunded: past every bound
        direct.fill(buyer, seller, 1, MAX_SIZE, MAX_PRICE)


# ---------------------------------------------------------------- position rules


def test_settle__reduce_only_order__must_reduce(system, traders, settle, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    for account in (trader, counterparty):
        system.fund(account, 10_000 * u)
    open_position(trader, counterparty, 0, WAD, 2_000 * u)  # long 1

    def fill(is_buy, size):
        return settle(
            system.order(trader, 0, is_buy, size, 2_000 * u, reduce_only=True),
            system.order(counterparty, 0, not is_buy, size, 2_000 * u),
            size,
            2_000 * u,
        )

    with ape.reverts("clearing: not reducing"):
        fill(True, WAD)  # buying grows the long
    with ape.reverts("clearing: not reducing"):
        fill(False, WAD + 1)  # selling past zero flips it
    with ape.reverts("clearing: not reducing"):
        settle(  # no position in market 1 at all
            system.order(trader, 1, True, WAD, 30 * u, reduce_only=True),
            system.order(counterparty, 1, False, WAD, 30 * u),
            WAD,
            30 * u,
        )
    fill(False, WAD // 4)
    fill(False, 3 * WAD // 4)  # down to exactly zero
    assert ch.positions(trader, 0).size == 0


def test_settle__market_reduce_only__both_sides_must_reduce(system, admin, traders, settle, open_position):
    ch, u = system.clearing_house, system.unit
    long, short, newcomer = traders[:3]
    for account in (long, short, newcomer):
        system.fund(account, 10_000 * u)
    open_position(long, short, 0, 2 * WAD, 2_000 * u)  # long 2, short -2
    ch.set_reduce_only(0, True, sender=admin)

    with ape.reverts("clearing: market reduce-only"):
        open_position(newcomer, short, 0, WAD, 2_000 * u)  # the buyer opens
    with ape.reverts("clearing: market reduce-only"):
        open_position(long, newcomer, 0, -WAD, 2_000 * u)  # the seller reduces, the buyer opens
    with ape.reverts("clearing: market reduce-only"):
        open_position(short, long, 0, 3 * WAD, 2_000 * u)  # flips are not reductions
    # a plain order (not reduce-only) that shrinks both sides goes through
    open_position(long, short, 0, -WAD, 2_000 * u)
    assert (ch.positions(long, 0).size, ch.positions(short, 0).size) == (WAD, -WAD)
    # other markets are untouched
    open_position(newcomer, short, 1, WAD, 30 * u)


def test_settle__open_interest_cap__reverts(system, admin, traders, settle, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    for account in (trader, counterparty):
        system.fund(account, 10_000 * u)
    capped = replace(system.markets[0].params, oi_cap=WAD)
    ch.set_market_params(0, capped.as_tuple(), sender=admin)  # at most 1 ETH of longs

    open_position(trader, counterparty, 0, WAD, 2_000 * u)  # exactly at the cap
    assert system.lens.markets(0).long_open_interest == WAD
    with ape.reverts("clearing: open interest cap"):
        open_position(trader, counterparty, 0, 1, 2_000 * u)
    # selling back shrinks the long open interest; buying again fills it up to the cap
    open_position(trader, counterparty, 0, -WAD // 2, 2_000 * u)
    assert system.lens.markets(0).long_open_interest == WAD // 2
    open_position(trader, counterparty, 0, WAD // 2, 2_000 * u)
    assert system.lens.markets(0).long_open_interest == WAD


def test_settle__opening_below_initial_margin__reverts(system, traders, settle, model):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    # Long 1 ETH at 2000 as maker needs the 200 initial margin plus the 0.4 fee: 200.4.
    needed = 200 * u + 4 * u // 10
    _fund(system, model, counterparty, amount=10_000 * u)
    system.fund(trader, needed, deposit=needed - 1)  # one unit stays in the wallet
    model.deposit(str(trader), needed - 1)
    bid = system.order(trader, 0, True, WAD, 2_000 * u)
    ask = system.order(counterparty, 0, False, WAD, 2_000 * u)

    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)
    # ... and the seller side is checked too: a short as taker needs 200 + 1.0 fee
    short = system.order(trader, 0, False, WAD, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(system.order(counterparty, 0, True, WAD, 2_000 * u), short, WAD, 2_000 * u)

    ch.deposit(1, sender=trader)  # one more unit: exactly enough
    model.deposit(str(trader), 1)
    settle(bid, ask, WAD, 2_000 * u)
    model.trade(str(trader), str(counterparty), 0, WAD, 2_000 * u, maker=str(trader))
    _assert_matches_model(system, model, (trader, counterparty))
    health = ch.health(trader)
    assert health.equity == health.initial == 200 * u


def test_settle__reducing_into_negative_equity__reverts(system, traders, settle, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    system.fund(counterparty, 10_000 * u)
    system.fund(trader, 210 * u)
    open_position(trader, counterparty, 0, WAD, 2_000 * u)  # long 1 at 2000, collateral ~209.6
    system.set_mark(0, 1_900 * u)  # equity ~109.6, maintenance 95: not liquidatable

    def sell_half(price):
        return settle(
            system.order(counterparty, 0, True, WAD // 2, price),
            system.order(trader, 0, False, WAD // 2, price),
            WAD // 2,
            price,
        )

    # dumping 0.5 at 1500 realises -250: collateral ~-40.8, remaining 0.5 worth -50
    with ape.reverts("clearing: negative equity"):
        sell_half(1_500 * u)
    # at 1700: realises -150, equity ~9.2 — below the 95 initial margin, but reducing
    # fills only need equity >= 0
    sell_half(1_700 * u)
    health = ch.health(trader)
    assert 0 <= health.equity < health.initial
    assert ch.positions(trader, 0).size == WAD // 2


def test_settle__cap_lowered_below_open_interest__reducing_fill_still_allowed(system, admin, traders, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    for account in (trader, counterparty):
        system.fund(account, 10_000 * u)
    open_position(trader, counterparty, 0, 2 * WAD, 2_000 * u)  # open interest 2 ETH
    ch.set_market_params(0, replace(system.markets[0].params, oi_cap=WAD).as_tuple(), sender=admin)

    # the long sells 0.5 back to the short: open interest falls 2 -> 1.5, still above the cap of 1
    open_position(trader, counterparty, 0, -WAD // 2, 2_000 * u)
    assert system.lens.markets(0).long_open_interest == 3 * WAD // 2
