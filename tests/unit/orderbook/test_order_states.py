"""Replay protection under random sequences (modules/orders.vy, alone in
tests/unit/orderbook/OrdersHarness.vy on revm, with real signatures).

A nonce names one order of its trader; orders signed with the same nonce
share its state. Whatever the sequence of fills and cancels, over orders
that share nonces or not, at both edges of a 128-nonce word and at the
largest nonce:

- no signed order is ever filled beyond its size, counting every fill made
  through its signature;
- after a cancel, no order of that nonce fills again (unless it was filled
  whole before: then nothing could fill anyway);
- every fill's success or revert reason, and the `filled` and `cancelled`
  views of every order after every step, equal the rules written out below.
"""

from pathlib import Path

from hypothesis import given, settings, strategies as st

from perpclear.deployment import labelled_key
from perpclear.engine import EngineError, RevmEngine, Tx
from perpclear.engine.base import Artifact
from perpclear.orders import Order, sign_order
from budget import by_profile

HARNESS = Path(__file__).with_name("OrdersHarness.vy")
TRADERS = [labelled_key(f"order-states-{i}") for i in range(2)]
NONCES = [1, 127, 128, 2**256 - 1]
OPEN, PARTLY_FILLED, FILLED, CANCELLED = range(4)

orders_st = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(NONCES), st.integers(1, 10), st.booleans()),
    min_size=1, max_size=6,
)
steps_st = st.lists(
    st.tuples(st.sampled_from(["fill", "fill", "fill", "cancel"]), st.integers(0, 5), st.integers(1, 12)),
    min_size=1, max_size=25,
)


@settings(max_examples=by_profile(quick=100, ci=400), deadline=None)
@given(specs=orders_st, steps=steps_st)
def test_order_states__random_fills_and_cancels_follow_the_rules(specs, steps):
    engine = RevmEngine()
    deployer = labelled_key("order-states")
    book = engine.deploy(Artifact("OrdersHarness", HARNESS), sender=deployer)
    engine.fund_gas(TRADERS)
    chain_id = engine.chain_id()
    orders = []
    for trader, nonce, size, is_buy in specs:
        o = Order(TRADERS[trader].address, 0, is_buy, size, 1_000, 2**40, nonce)
        orders.append((o, sign_order(TRADERS[trader], o, chain_id, book)))

    state = {}  # (trader, nonce) -> (state, amount filled while partly filled)
    through = [0] * len(orders)  # filled through each order's signature

    def expected_fill(o, amount):
        st_, part = state.get((o.trader, o.nonce), (OPEN, 0))
        if st_ == CANCELLED:
            return "orders: cancelled"
        before = o.size if st_ == FILLED else min(part, o.size) if st_ == PARTLY_FILLED else 0
        if amount > o.size - before:
            return "orders: overfilled"
        total = before + amount
        state[(o.trader, o.nonce)] = (PARTLY_FILLED, total) if total < o.size else (FILLED, 0)
        return None

    for kind, i, amount in steps:
        o, signature = orders[i % len(orders)]
        if kind == "fill":
            want = expected_fill(o, amount)
            try:
                engine.send([Tx(deployer, book, "fill", (o.as_tuple(), signature, amount))])
                got = None
            except EngineError as exc:
                got = str(exc).split("reverted: ", 1)[1]
            assert got == want, (kind, o, amount)
            if got is None:
                through[i % len(orders)] += amount
        else:
            trader = TRADERS[[t.address for t in TRADERS].index(o.trader)]
            engine.send([Tx(trader, book, "cancel", (o.as_tuple(),))])
            st_, part = state.get((o.trader, o.nonce), (OPEN, 0))
            if st_ != FILLED:
                state[(o.trader, o.nonce)] = (CANCELLED, part)

        for j, (other, _) in enumerate(orders):
            st_, part = state.get((other.trader, other.nonce), (OPEN, 0))
            assert engine.call(book, "filled", other.as_tuple()) == (other.size if st_ == FILLED else part)
            assert engine.call(book, "cancelled", other.as_tuple()) == (st_ == CANCELLED)
            assert through[j] <= other.size  # never beyond its size, through its own signature
