"""ClearingHouse.settle and the signed-order rules (EIP-712, fills, cancels, replay).

Many revert tests use unfunded traders on purpose: every order check runs before
the margin check, so an order that passes them all stops at
"clearing: below initial margin" — the positive control, without funding txs.
"""

from dataclasses import replace

import ape
import pytest
from eth_keys import keys

from perpclear.model import WAD
from perpclear.orders import order_digest, sign_order

MAX_SIZE = MAX_PRICE = 10**30
SECP256K1N_HALF = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
ORACLE_MAX_AGE = 3_600


def _args(maker, taker):
    """settle's first four arguments from two (order, signature) pairs."""
    (maker_order, maker_sig), (taker_order, taker_sig) = maker, taker
    return maker_order.as_tuple(), maker_sig, taker_order.as_tuple(), taker_sig


def _recover(digest: bytes, signature: bytes) -> str:
    """Signer of an r || s || v signature, high s accepted (plain ecrecover)."""
    r, s, v = signature[:32], signature[32:64], signature[64]
    vrs = (v - 27, int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    return keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(digest).to_checksum_address()


def _assert_matches_model(ch, model, accounts, markets=(0, 1)):
    for account in accounts:
        assert ch.collateral(account) == model.collateral.get(str(account), 0)
        for market in markets:
            on_chain, expected = ch.positions(account, market), model.position(str(account), market)
            assert (on_chain.size, on_chain.open_notional) == (expected.size, expected.open_notional)
    for market in markets:
        assert ch.markets(market).long_open_interest == model.markets[market].long_open_interest
    assert ch.total_collateral() == model.total_collateral
    assert ch.total_open_notional() == model.total_open_notional
    assert (ch.protocol_fees(), ch.insurance_fees()) == (model.protocol_fees, model.insurance_fees)


def _fund(system, model, *accounts, amount):
    for account in accounts:
        system.fund(account, amount)
        model.deposit(str(account), amount)


# ---------------------------------------------------------------- happy paths


def test_settle__open_then_reduce__matches_model(system, traders, settle, model):
    ch, u = system.clearing_house, system.unit
    alice_long, bob_short = traders[:2]
    _fund(system, model, alice_long, bob_short, amount=5_000 * u)

    # Fill 1: the long's bid (maker) meets the short's ask (taker): 1.5 ETH at 2001.37.
    # Notional 3002.055; maker fee 2 bps = 0.600411, taker 5 bps = 1.5010275 (rounded up).
    price = 200_137 * u // 100
    bid = system.order(alice_long, 0, True, 3 * WAD // 2, 2_002 * u)
    ask = system.order(bob_short, 0, False, 2 * WAD, 2_001 * u)  # 2 offered, 1.5 filled
    tx = settle(bid, ask, 3 * WAD // 2, price)
    fees = model.trade(str(alice_long), str(bob_short), 0, 3 * WAD // 2, price, maker=str(alice_long))
    _assert_matches_model(ch, model, (alice_long, bob_short))
    assert fees[0] > 0 and fees[1] > fees[0]

    filled = tx.decode_logs(ch.OrderFilled)
    assert [
        (e.market, e.buyer, e.seller, e.size, e.price, e.buyer_fee, e.seller_fee, e.maker_hash, e.taker_hash)
        for e in filled
    ] == [
        (
            0, alice_long.address, bob_short.address, 3 * WAD // 2, price, fees[0], fees[1],
            ch.order_hash(bid[0].as_tuple()), ch.order_hash(ask[0].as_tuple()),
        )
    ]
    changes = [(e.account, e.market, e.size, e.open_notional, e.realized_pnl) for e in tx.decode_logs(ch.PositionChanged)]
    assert changes == [
        (alice_long.address, 0, 3 * WAD // 2, model.position(str(alice_long), 0).open_notional, 0),
        (bob_short.address, 0, -3 * WAD // 2, model.position(str(bob_short), 0).open_notional, 0),
    ]
    assert ch.filled(ch.order_hash(ask[0].as_tuple())) == 3 * WAD // 2

    # Fill 2: the short's bid (maker) buys back 0.4 ETH at 1998.11 from the long (taker).
    # The long releases 0.4/1.5 of its cost basis (rounded up) and realises ~-1.304.
    price = 199_811 * u // 100
    before = {a: model.collateral[str(a)] for a in (alice_long, bob_short)}
    tx = settle(
        system.order(bob_short, 0, True, 2 * WAD // 5, price),
        system.order(alice_long, 0, False, 2 * WAD // 5, price),
        2 * WAD // 5,
        price,
    )
    fees = model.trade(str(bob_short), str(alice_long), 0, 2 * WAD // 5, price, maker=str(bob_short))
    _assert_matches_model(ch, model, (alice_long, bob_short))
    realized = {
        e.account: e.realized_pnl for e in tx.decode_logs(ch.PositionChanged)
    }
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
    _assert_matches_model(ch, model, (flipper, other))

    assert ch.positions(flipper, 0).size == -(WAD - 7)
    assert ch.positions(other, 0).size == WAD - 7
    realized = {e.account: e.realized_pnl for e in tx.decode_logs(ch.PositionChanged)}
    expected_flipper = model.collateral[str(flipper)] - before[flipper] + fees[1]
    assert realized[flipper.address] == expected_flipper
    assert realized[other.address] == model.collateral[str(other)] - before[other] + fees[0]
    # ~ (2100.987654 - 2000.123457) * 2 = ~201.73, rounded down
    assert 201 * u < expected_flipper < 202 * u


def test_settle__partial_fills_of_one_maker_order(system, traders, settle):
    ch, u = system.clearing_house, system.unit
    maker, first, second = traders[:3]
    for account in (maker, first, second):
        system.fund(account, 10_000 * u)

    # The maker offers 3 ETH at 1995; two takers lift 1 and then 2.
    ask = system.order(maker, 0, False, 3 * WAD, 1_995 * u)
    ask_hash = ch.order_hash(ask[0].as_tuple())
    bid_1 = system.order(first, 0, True, WAD, 2_000 * u)
    settle(ask, bid_1, WAD, 1_995 * u)
    assert ch.filled(ask_hash) == WAD
    assert ch.filled(ch.order_hash(bid_1[0].as_tuple())) == WAD

    settle(ask, system.order(second, 0, True, 5 * WAD, 2_000 * u), 2 * WAD, 1_995 * u)
    assert ch.filled(ask_hash) == 3 * WAD
    assert ch.positions(maker, 0).size == -3 * WAD
    assert (ch.positions(first, 0).size, ch.positions(second, 0).size) == (WAD, 2 * WAD)

    # nothing is left: even one more wei overfills the maker order
    with ape.reverts("orders: overfilled"):
        settle(ask, system.order(first, 0, True, WAD, 2_000 * u), 1, 1_995 * u)


# ---------------------------------------------------------------- argument checks


def test_settle__not_matcher__reverts(system, traders, admin, keeper):
    bid = system.order(traders[0], 0, True, WAD, 2_000 * system.unit)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * system.unit)
    for sender in (traders[0], admin, keeper):  # not even the owner settles
        with ape.reverts("clearing: not matcher"):
            system.clearing_house.settle(*_args(bid, ask), WAD, 2_000 * system.unit, sender=sender)


def test_settle__bad_size_or_price__reverts(system, traders, settle):
    bid = system.order(traders[0], 0, True, MAX_SIZE + 1, MAX_PRICE + 1)
    ask = system.order(traders[1], 0, False, MAX_SIZE + 1, 1)
    with ape.reverts("clearing: zero size"):
        settle(bid, ask, 0, 2_000)
    with ape.reverts("clearing: size too large"):
        settle(bid, ask, MAX_SIZE + 1, 2_000)
    with ape.reverts("clearing: zero price"):
        settle(bid, ask, WAD, 0)
    with ape.reverts("clearing: price too large"):
        settle(bid, ask, WAD, MAX_PRICE + 1)


def test_settle__mismatched_orders__reverts(system, traders, settle):
    u, buyer, seller = system.unit, traders[0], traders[1]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    with ape.reverts("clearing: market mismatch"):
        settle(bid, system.order(seller, 1, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("clearing: unknown market"):
        settle(system.order(buyer, 2, True, WAD, 2_000 * u), system.order(seller, 2, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("clearing: same side"):
        settle(bid, system.order(seller, 0, True, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("clearing: same side"):
        settle(system.order(buyer, 0, False, WAD, 2_000 * u), system.order(seller, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)
    with ape.reverts("clearing: self trade"):
        settle(bid, system.order(buyer, 0, False, WAD, 2_000 * u), WAD, 2_000 * u)


def test_settle__price_outside_limit__reverts(system, traders, settle):
    u, buyer, seller = system.unit, traders[0], traders[1]
    bid = system.order(buyer, 0, True, WAD, 1_999 * u)
    ask = system.order(seller, 0, False, WAD, 2_001 * u)
    with ape.reverts("clearing: price outside limit"):
        settle(bid, system.order(seller, 0, False, WAD, 1_990 * u), WAD, 1_999 * u + 1)  # above the bid
    with ape.reverts("clearing: price outside limit"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_010 * u), WAD, 2_001 * u - 1)  # below the ask
    # either limit itself is a valid price: the orders pass and stop at the (unfunded) margin check
    with ape.reverts("clearing: below initial margin"):
        settle(bid, system.order(seller, 0, False, WAD, 1_990 * u), WAD, 1_999 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_010 * u), WAD, 2_001 * u)


# ---------------------------------------------------------------- order lifecycle


def test_settle__expired_order__reverts(system, traders, settle, chain):
    u = system.unit
    now = chain.blocks.head.timestamp
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    with ape.reverts("orders: expired"):
        settle(bid, system.order(traders[1], 0, False, WAD, 2_000 * u, expiry=now - 1), WAD, 2_000 * u)
    with ape.reverts("orders: expired"):
        settle(system.order(traders[1], 0, False, WAD, 2_000 * u, expiry=now - 1), bid, WAD, 2_000 * u)


def test_cancel_order__voids_the_order(system, traders, settle):
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ask = system.order(seller, 0, False, WAD, 2_000 * u)
    bid_hash = ch.order_hash(bid[0].as_tuple())

    with ape.reverts("orders: not trader"):
        ch.cancel_order(bid[0].as_tuple(), sender=seller)
    assert not ch.cancelled(bid_hash)

    tx = ch.cancel_order(bid[0].as_tuple(), sender=buyer)
    assert ch.cancelled(bid_hash)
    assert [(e.trader, e.order_hash) for e in tx.decode_logs(ch.OrderCancelled)] == [(buyer.address, bid_hash)]
    with ape.reverts("orders: cancelled"):
        settle(bid, ask, WAD, 2_000 * u)
    with ape.reverts("orders: cancelled"):
        settle(ask, bid, WAD, 2_000 * u)  # as taker too
    # the counterparty's order is untouched: with a fresh bid it gets as far as the margin check
    with ape.reverts("clearing: below initial margin"):
        settle(ask, system.order(buyer, 0, True, WAD, 2_000 * u), WAD, 2_000 * u)


def test_cancel_orders_below__voids_lower_nonces(system, traders, settle):
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    ask = system.order(seller, 0, False, WAD, 2_000 * u, nonce=1_000)

    tx = ch.cancel_orders_below(100, sender=buyer)
    assert ch.min_nonce(buyer) == 100
    assert [(e.trader, e.min_nonce) for e in tx.decode_logs(ch.NoncesCancelled)] == [(buyer.address, 100)]

    with ape.reverts("orders: nonce cancelled"):
        settle(system.order(buyer, 0, True, WAD, 2_000 * u, nonce=99), ask, WAD, 2_000 * u)
    # nonce 100 is the first valid one: it stops at the (unfunded) margin check
    with ape.reverts("clearing: below initial margin"):
        settle(system.order(buyer, 0, True, WAD, 2_000 * u, nonce=100), ask, WAD, 2_000 * u)

    with ape.reverts("orders: nonce not increasing"):
        ch.cancel_orders_below(100, sender=buyer)
    with ape.reverts("orders: nonce not increasing"):
        ch.cancel_orders_below(50, sender=buyer)
    assert ch.min_nonce(buyer) == 100
    assert ch.min_nonce(seller) == 0  # per trader


# ---------------------------------------------------------------- signatures and replay


def test_order_hash__equals_offchain_digest(system, traders):
    ch = system.clearing_house
    order, _ = system.order(traders[0], 1, False, 12_345, 678, reduce_only=True)
    assert bytes(ch.order_hash(order.as_tuple())) == order_digest(order, system.chain_id, str(ch.address))
    flipped = replace(order, reduce_only=False)
    assert bytes(ch.order_hash(flipped.as_tuple())) == order_digest(flipped, system.chain_id, str(ch.address))
    assert ch.order_hash(flipped.as_tuple()) != ch.order_hash(order.as_tuple())


def test_settle__forged_signatures__reverts(system, traders, settle, model, sign_with, malleate):
    ch, u = system.clearing_house, system.unit
    buyer, seller, stranger = traders[:3]
    _fund(system, model, buyer, seller, amount=10_000 * u)
    ask = system.order(seller, 0, False, WAD, 2_000 * u)
    bid, bid_sig = system.order(buyer, 0, True, WAD, 2_000 * u)
    chain_id, address = system.chain_id, str(ch.address)

    # signed by a key that is not the trader's
    forged = sign_with(stranger.private_key, bid, chain_id, address)
    with ape.reverts("orders: bad signature"):
        settle((bid, forged), ask, WAD, 2_000 * u)
    # tampered: the trader signed 1 ETH, the matcher submits 2 ETH with that signature
    bigger = replace(bid, size=2 * WAD)
    with ape.reverts("orders: bad signature"):
        settle((bigger, bid_sig), ask, WAD, 2_000 * u)
    # malleable twin of the genuine signature: s' = n - s, v flipped
    twin = malleate(bytes(bid_sig))
    assert int.from_bytes(bytes(bid_sig)[32:64], "big") <= SECP256K1N_HALF < int.from_bytes(twin[32:64], "big")
    digest = order_digest(bid, chain_id, address)
    assert _recover(digest, twin) == _recover(digest, bytes(bid_sig)) == buyer.address  # same signer
    with ape.reverts("orders: bad signature"):
        settle((bid, twin), ask, WAD, 2_000 * u)
    with ape.reverts("orders: bad signature"):
        settle(ask, (bid, twin), WAD, 2_000 * u)  # as taker too
    # truncated and garbage signatures
    with ape.reverts("orders: bad signature"):
        settle((bid, bytes(bid_sig)[:64]), ask, WAD, 2_000 * u)
    with ape.reverts("orders: bad signature"):
        settle((bid, b"\x01" * 65), ask, WAD, 2_000 * u)

    # the genuine signature settles
    settle((bid, bid_sig), ask, WAD, 2_000 * u)
    model.trade(str(buyer), str(seller), 0, WAD, 2_000 * u, maker=str(buyer))
    _assert_matches_model(ch, model, (buyer, seller))


def test_settle__replayed_orders__overfilled(system, traders, settle):
    ch, u = system.clearing_house, system.unit
    buyer, seller = traders[:2]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    bid = system.order(buyer, 0, True, WAD, 2_000 * u)
    ask = system.order(seller, 0, False, 3 * WAD, 2_000 * u)

    settle(bid, ask, WAD, 2_000 * u)
    with ape.reverts("orders: overfilled"):
        settle(bid, ask, WAD, 2_000 * u)  # the same pair again
    with ape.reverts("orders: overfilled"):
        settle(bid, ask, 1, 2_000 * u)  # the bid is done, even for one wei
    assert ch.filled(ch.order_hash(bid[0].as_tuple())) == WAD
    assert ch.filled(ch.order_hash(ask[0].as_tuple())) == WAD
    assert ch.positions(buyer, 0).size == WAD


def test_settle__order_signed_for_another_deployment__reverts(system, project, admin, matcher, traders, settle):
    u, token, oracle, vault = system.unit, system.token, system.oracle, system.vault
    # A second clearing house over the same token, oracle and vault.
    other = project.ClearingHouse.deploy(token, oracle, vault, admin, sender=admin)
    other.add_market(system.markets[0].params.as_tuple(), 1, sender=admin)
    other.set_matcher(matcher, True, sender=admin)
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    assert other.order_hash(bid[0].as_tuple()) != system.clearing_house.order_hash(bid[0].as_tuple())

    with ape.reverts("orders: bad signature"):
        other.settle(*_args(bid, ask), WAD, 2_000 * u, sender=matcher)
    # the same orders are good on the deployment they were signed for (unfunded: margin check)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)


def test_settle__order_signed_for_another_chain__reverts(system, traders, settle):
    u, ch = system.unit, system.clearing_house
    bid, _ = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    other_chain = sign_order(traders[0].private_key, bid, system.chain_id + 1, str(ch.address))
    with ape.reverts("orders: bad signature"):
        settle((bid, other_chain), ask, WAD, 2_000 * u)
    this_chain = sign_order(traders[0].private_key, bid, system.chain_id, str(ch.address))
    with ape.reverts("clearing: below initial margin"):
        settle((bid, this_chain), ask, WAD, 2_000 * u)


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


def test_settle__open_interest_cap__reverts(system, admin, traders, settle, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    for account in (trader, counterparty):
        system.fund(account, 10_000 * u)
    capped = replace(system.markets[0].params, oi_cap=WAD)
    ch.set_market_params(0, capped.as_tuple(), sender=admin)  # at most 1 ETH of longs

    open_position(trader, counterparty, 0, WAD, 2_000 * u)  # exactly at the cap
    assert ch.markets(0).long_open_interest == WAD
    with ape.reverts("clearing: open interest cap"):
        open_position(trader, counterparty, 0, 1, 2_000 * u)
    # selling back shrinks the long open interest; buying again fills it up to the cap
    open_position(trader, counterparty, 0, -WAD // 2, 2_000 * u)
    assert ch.markets(0).long_open_interest == WAD // 2
    open_position(trader, counterparty, 0, WAD // 2, 2_000 * u)
    assert ch.markets(0).long_open_interest == WAD


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
    _assert_matches_model(ch, model, (trader, counterparty))
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


def test_settle__stale_oracle__reverts(system, traders, settle, chain):
    u = system.unit
    expiry = chain.blocks.head.timestamp + 10 * ORACLE_MAX_AGE  # the orders outlive the mark
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u, expiry=expiry)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u, expiry=expiry)

    chain.pending_timestamp += ORACLE_MAX_AGE + 1
    with ape.reverts("oracle: stale price"):
        settle(bid, ask, WAD, 2_000 * u)
    system.set_mark(0, 2_000 * u)  # fresh again: the unfunded orders reach the margin check
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)


def test_settle__cap_lowered_below_open_interest__reducing_fill_still_allowed(system, admin, traders, open_position):
    ch, u = system.clearing_house, system.unit
    trader, counterparty = traders[:2]
    for account in (trader, counterparty):
        system.fund(account, 10_000 * u)
    open_position(trader, counterparty, 0, 2 * WAD, 2_000 * u)  # open interest 2 ETH
    ch.set_market_params(0, replace(system.markets[0].params, oi_cap=WAD).as_tuple(), sender=admin)

    # the long sells 0.5 back to the short: open interest falls 2 -> 1.5, still above the cap of 1
    open_position(trader, counterparty, 0, -WAD // 2, 2_000 * u)
    assert ch.markets(0).long_open_interest == 3 * WAD // 2
