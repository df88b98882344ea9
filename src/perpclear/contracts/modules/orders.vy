# pragma version 0.4.3
"""
@title perpclear signed orders
@license MIT
@notice EIP-712 orders signed by traders off chain and filled on chain by an
        authorised matcher. Replay protection: the domain binds chain id and
        contract address; a nonce names one order of its trader (a second
        order signed with the same nonce shares its state), whose state is
        two bits: open, partly filled (the amount filled is then stored),
        filled whole, or cancelled; every order below a trader's minimum nonce
        is void. A trader's nonces share a word 128 at a time, so an order
        filled whole by one fill writes no storage of its own. A contract
        trader signs through EIP-1271.
        The domain is discoverable (EIP-5267 `eip712Domain()`): name
        "perpclear", version "1", the chain id and this contract. The type:
            Order(address trader,uint256 market,bool is_buy,uint256 size,
                  uint256 limit_price,uint256 expiry,uint256 nonce,
                  bool reduce_only,uint256 max_fee_bps)
        `max_fee_bps` caps the fee the order pays, whatever the fee schedule
        is when it fills: the owner can change fees after it was signed.
        Signatures: 65 bytes r || s || v with v 27/28 or 0/1, or 64 bytes
        r || vs (EIP-2098); a high s is refused (a malleable copy). Each
        refusal has its own reason; a signature by another key (most often a
        digest built with another domain or type string) is
        "orders: signer is not the trader".
"""

from . import constants as c
from . import math

# EIP-1271 magic value returned by `isValidSignature`.
EIP1271_MAGIC: constant(bytes4) = 0x1626ba7e

# Upper half of secp256k1n: signatures with a higher s are malleable copies.
# (= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0)
SECP256K1N_HALF: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(address trader,uint256 market,bool is_buy,uint256 size,uint256 limit_price,uint256 expiry,uint256 nonce,bool reduce_only,uint256 max_fee_bps)"
)
NAME_HASH: constant(bytes32) = keccak256("perpclear")
VERSION_HASH: constant(bytes32) = keccak256("1")


interface IERC1271:
    def isValidSignature(_hash: bytes32, _signature: Bytes[65]) -> bytes4: view


struct Order:
    trader: address
    market: uint256
    is_buy: bool
    size: uint256
    limit_price: uint256
    expiry: uint256
    nonce: uint256
    reduce_only: bool
    max_fee_bps: uint256


# Per trader, the state of each nonce: two bits at 2 * (nonce % 128) of word
# nonce // 128.
nonce_words: HashMap[address, HashMap[uint256, uint256]]
OPEN: constant(uint256) = 0
PARTLY_FILLED: constant(uint256) = 1  # the amount filled is in `partly_filled`
FILLED: constant(uint256) = 2
CANCELLED: constant(uint256) = 3
# Base amount filled of an order partly filled (set while it is, cleared when it fills whole).
partly_filled: HashMap[address, HashMap[uint256, uint256]]
# Every order of a trader with a lower nonce is void.
min_nonce: public(HashMap[address, uint256])


event OrderCancelled:
    trader: indexed(address)
    order_hash: indexed(bytes32)


event NoncesCancelled:
    trader: indexed(address)
    min_nonce: uint256


@internal
@view
def _domain_separator() -> bytes32:
    # chain.id is read at call time, so a fork to another chain id voids old signatures.
    return keccak256(
        abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self)
    )


@internal
@view
def _order_digest(order: Order) -> bytes32:
    struct_hash: bytes32 = keccak256(
        abi_encode(
            ORDER_TYPEHASH,
            order.trader,
            order.market,
            order.is_buy,
            order.size,
            order.limit_price,
            order.expiry,
            order.nonce,
            order.reduce_only,
            order.max_fee_bps,
        )
    )
    return keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))


@external
@view
def eip712Domain() -> (bytes1, String[9], String[1], uint256, address, bytes32, DynArray[uint256, 1]):
    """
    @notice The EIP-712 domain of the orders (EIP-5267): fields 0x0f (name,
            version, chain id, verifying contract), no salt, no extensions.
    """
    return (0x0f, "perpclear", "1", chain.id, self, empty(bytes32), [])


@internal
@view
def _check_signature(signer: address, digest: bytes32, signature: Bytes[65]):
    """
    @dev Reverts with the reason a signature is refused (see the module notice).
         A valid ECDSA signature by the trader's key is accepted before any
         code lookup: only a refused one asks whether the trader is a contract.
    """
    r: uint256 = 0
    s: uint256 = 0
    v: uint256 = 0
    if len(signature) == 64 or len(signature) == 65:
        r = extract32(signature, 0, output_type=uint256)
        s = extract32(signature, 32, output_type=uint256)
        if len(signature) == 64:
            # EIP-2098: the top bit of the second word is v - 27.
            v = 27 + (s >> 255)
            s = s & (max_value(uint256) >> 1)
        else:
            v = convert(slice(signature, 64, 1), uint256)
            if v < 2:
                v += 27  # some signers give the recovery id 0/1
        if (v == 27 or v == 28) and s <= SECP256K1N_HALF:
            recovered: address = ecrecover(digest, v, r, s)
            if recovered != empty(address) and recovered == signer:
                return
    if signer.is_contract:
        assert staticcall IERC1271(signer).isValidSignature(digest, signature) == EIP1271_MAGIC, "orders: contract signature refused"
        return
    assert len(signature) == 65 or len(signature) == 64, "orders: signature length not 64 or 65"
    assert v == 27 or v == 28, "orders: signature v not 27/28 or 0/1"
    assert s <= SECP256K1N_HALF, "orders: signature s too high (malleable)"
    raise "orders: signer is not the trader"


@internal
@view
def _state(trader: address, nonce: uint256) -> (uint256, uint256, uint256):
    """
    @dev The word holding the nonce's state, the state's bit offset in it and the state.
    """
    word: uint256 = self.nonce_words[trader][nonce >> 7]
    offset: uint256 = (nonce & 127) << 1
    return word, offset, (word >> offset) & 3


@internal
@view
def _status(order: Order) -> uint256:
    """
    @dev The state of the order's nonce alone (the views').
    """
    word: uint256 = 0
    offset: uint256 = 0
    state: uint256 = 0
    word, offset, state = self._state(order.trader, order.nonce)
    return state


@internal
def _fill(order: Order, signature: Bytes[65], amount: uint256) -> bytes32:
    """
    @dev Checks an order and books `amount` (> 0) of base against it.
    @return The order's EIP-712 digest.
    """
    assert order.expiry >= block.timestamp, "orders: expired"
    assert order.nonce >= self.min_nonce[order.trader], "orders: nonce cancelled"
    word: uint256 = 0
    offset: uint256 = 0
    state: uint256 = 0
    word, offset, state = self._state(order.trader, order.nonce)
    assert state != CANCELLED, "orders: cancelled"
    digest: bytes32 = self._order_digest(order)
    self._check_signature(order.trader, digest, signature)
    before: uint256 = 0
    if state == FILLED:
        before = order.size
    elif state == PARTLY_FILLED:
        before = min(self.partly_filled[order.trader][order.nonce], order.size)
    assert amount <= order.size - before, "orders: overfilled"
    after: uint256 = FILLED
    if before + amount < order.size:
        after = PARTLY_FILLED
        self.partly_filled[order.trader][order.nonce] = before + amount
    elif state == PARTLY_FILLED:
        self.partly_filled[order.trader][order.nonce] = 0
    if after != state:
        self.nonce_words[order.trader][order.nonce >> 7] = word ^ ((state ^ after) << offset)
    return digest


@external
@view
def filled(order: Order) -> uint256:
    """
    @notice Base amount filled so far of `order` (of its trader's order with
            its nonce).
    """
    if self._status(order) == FILLED:
        return order.size
    return self.partly_filled[order.trader][order.nonce]


@external
@view
def cancelled(order: Order) -> bool:
    """
    @notice Whether the trader cancelled `order` (its order with this nonce).
    """
    return self._status(order) == CANCELLED


@internal
@pure
def _fee_cap(size: uint256, price: uint256, max_fee_bps: uint256) -> uint256:
    """
    @dev The most an order of `max_fee_bps` pays on a fill of `size` at `price`:
         ceil(notional x bps / 10,000), the clearing house's rounding of the fee.
         Caps above 100 % count as 100 % (no overflow on any signed value).
    """
    return math._mul_div(size * price // c.WAD, min(max_fee_bps, c.BPS), c.BPS, True)


@internal
def _cancel(order: Order):
    """
    @dev Voids the order's nonce; one filled whole stays filled (nothing is left to void).
    """
    assert order.trader == msg.sender, "orders: not trader"
    word: uint256 = 0
    offset: uint256 = 0
    state: uint256 = 0
    word, offset, state = self._state(order.trader, order.nonce)
    if state != FILLED:
        self.nonce_words[order.trader][order.nonce >> 7] = word | (CANCELLED << offset)
    log OrderCancelled(trader=msg.sender, order_hash=self._order_digest(order))


@internal
def _cancel_below(new_min_nonce: uint256):
    assert new_min_nonce > self.min_nonce[msg.sender], "orders: nonce not increasing"
    self.min_nonce[msg.sender] = new_min_nonce
    log NoncesCancelled(trader=msg.sender, min_nonce=new_min_nonce)
