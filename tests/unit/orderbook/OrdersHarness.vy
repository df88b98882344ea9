# pragma version 0.4.3
"""
@title OrdersHarness
@license MIT
@notice Test helper (not a project contract): the signed-order module alone
        (signature checks and replay protection, no clearing house), so that
        random sequences of fills and cancels can be run against it in process
        (tests/unit/orderbook/test_order_states.py).
"""

from perpclear.contracts.modules import orders

initializes: orders

exports: (orders.filled, orders.cancelled)


@external
def fill(order: orders.Order, signature: Bytes[65], amount: uint256):
    orders._fill(order, signature, amount)


@external
def cancel(order: orders.Order):
    orders._cancel(order)
