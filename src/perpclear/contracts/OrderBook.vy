# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title perpclear order book
@license MIT
@notice Checks EIP-712 orders signed by traders and matched off chain, and
        hands each fill to the clearing house, which books positions, fees and
        margin. Replay protection: the signing domain binds this contract and
        the chain id; a nonce names one order of its trader, whose state
        (open, partly filled with its amount, filled whole, cancelled) never
        lets it fill beyond its size; orders can be cancelled one by one or
        below a nonce (modules/orders.vy).
        (A contract of its own because the clearing house alone is close to the
        24,576-byte limit of EIP-170.)
@custom:kill Revoke every matcher with `set_matcher(m, False)`: no fill can be
        settled; the clearing house's reduce-only mode is the gentler switch.
"""

from interfaces import IClearingHouse
from .modules import orders
from .modules import ownership

initializes: orders
initializes: ownership

exports: (
    orders.filled,
    orders.cancelled,
    orders.min_nonce,
    orders.eip712Domain,
    ownership.owner,
    ownership.pending_owner,
    ownership.transfer_ownership,
    ownership.accept_ownership,
)


clearing_house: public(immutable(IClearingHouse))
is_matcher: public(HashMap[address, bool])


event OrderFilled:
    market: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    size: uint256
    price: uint256
    buyer_fee: uint256
    seller_fee: uint256
    maker_hash: bytes32
    taker_hash: bytes32


event MatcherSet:
    matcher: indexed(address)
    allowed: bool


@deploy
def __init__(_clearing_house: IClearingHouse):
    """
    @param _clearing_house The clearing house that books the fills.
    """
    assert _clearing_house.address != empty(address), "orders: zero address"
    clearing_house = _clearing_house
    ownership.__init__()


@external
def set_matcher(matcher: address, allowed: bool):
    """
    @notice Allows or revokes an order matcher.
    """
    ownership._check_owner()
    assert matcher != empty(address), "orders: zero address"
    self.is_matcher[matcher] = allowed
    log MatcherSet(matcher=matcher, allowed=allowed)


@external
def settle(
    maker: orders.Order,
    maker_signature: Bytes[65],
    taker: orders.Order,
    taker_signature: Bytes[65],
    size: uint256,
    price: uint256,
):
    """
    @notice Settles one fill of two signed orders at `price`.
    @param size Base amount filled (18 decimals), at most what remains of both.
    @param price Fill price, within both limit prices.
    """
    assert self.is_matcher[msg.sender], "orders: not matcher"
    assert size > 0, "orders: zero size"
    assert maker.market == taker.market, "orders: market mismatch"
    assert maker.is_buy != taker.is_buy, "orders: same side"
    assert maker.trader != taker.trader, "orders: self trade"
    buy: orders.Order = maker
    sell: orders.Order = taker
    if taker.is_buy:
        buy = taker
        sell = maker
    assert buy.limit_price >= price and sell.limit_price <= price, "orders: price outside limit"
    maker_hash: bytes32 = orders._fill(maker, maker_signature, size)
    taker_hash: bytes32 = orders._fill(taker, taker_signature, size)
    buyer_fee: uint256 = 0
    seller_fee: uint256 = 0
    buyer_fee, seller_fee = extcall clearing_house.execute_fill(
        buy.trader,
        sell.trader,
        maker.market,
        size,
        price,
        maker.is_buy,
        buy.reduce_only,
        sell.reduce_only,
    )
    assert buyer_fee <= orders._fee_cap(size, price, buy.max_fee_bps) and seller_fee <= orders._fee_cap(
        size, price, sell.max_fee_bps
    ), "orders: fee above the order's max"
    log OrderFilled(
        market=maker.market,
        buyer=buy.trader,
        seller=sell.trader,
        size=size,
        price=price,
        buyer_fee=buyer_fee,
        seller_fee=seller_fee,
        maker_hash=maker_hash,
        taker_hash=taker_hash,
    )


@external
def cancel_order(order: orders.Order):
    """
    @notice Voids one of the caller's orders, filled or not.
    """
    orders._cancel(order)


@external
def cancel_orders_below(min_nonce: uint256):
    """
    @notice Voids every order of the caller whose nonce is below `min_nonce`.
    """
    orders._cancel_below(min_nonce)


@external
@view
def domain_separator() -> bytes32:
    """
    @notice EIP-712 domain separator of this contract on this chain.
    """
    return orders._domain_separator()


@external
@view
def order_hash(order: orders.Order) -> bytes32:
    """
    @notice EIP-712 digest that the trader signs.
    """
    return orders._order_digest(order)
