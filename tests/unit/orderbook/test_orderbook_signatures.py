"""EIP-712 signatures on the OrderBook: the digest, forgeries, contract traders,
and replay across chains and deployments.

The signing domain binds the ORDER BOOK (verifyingContract) and the chain id.
Unfunded traders on purpose: an order that passes every order check stops at
"clearing: below initial margin" (the positive control).
"""

from dataclasses import replace

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from perpclear.model import WAD
from perpclear.orders import Order, domain_separator, order_digest, sign_order, typed_data

SECP256K1N_HALF = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
SECP256K1N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _recover(digest: bytes, signature: bytes) -> str:
    """Signer of an r || s || v signature, high s accepted (plain ecrecover)."""
    r, s, v = signature[:32], signature[32:64], signature[64]
    vrs = (v - 27, int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    return keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(digest).to_checksum_address()


# ---------------------------------------------------------------- the digest


def test_order_hash__equals_offchain_digest_for_the_order_book(system, traders):
    ob, ch = system.order_book, system.clearing_house
    order, _ = system.order(traders[0], 1, False, 12_345, 678, reduce_only=True)
    digest = bytes(ob.order_hash(order.as_tuple()))
    assert digest == order_digest(order, system.chain_id, str(ob.address))
    assert digest != order_digest(order, system.chain_id, str(ch.address))  # not the pre-split domain
    flipped = replace(order, reduce_only=False)
    assert bytes(ob.order_hash(flipped.as_tuple())) == order_digest(flipped, system.chain_id, str(ob.address))
    assert ob.order_hash(flipped.as_tuple()) != ob.order_hash(order.as_tuple())


def test_domain_separator__binds_name_version_chain_and_order_book(system):
    ob = system.order_book
    probe = Order(trader=str(ob.address), market=0, is_buy=True, size=1, limit_price=1, expiry=0, nonce=0)
    # EIP-712: the signable message's header is the domain separator
    expected = encode_typed_data(full_message=typed_data(probe, system.chain_id, str(ob.address))).header
    assert bytes(ob.domain_separator()) == expected
    other = encode_typed_data(full_message=typed_data(probe, system.chain_id, str(system.clearing_house.address))).header
    assert expected != other


@settings(max_examples=50, deadline=None)
@given(market=st.integers(0, 2**256 - 1), is_buy=st.booleans(), size=st.integers(0, 2**256 - 1),
       price=st.integers(0, 2**256 - 1), nonce=st.integers(0, 2**256 - 1), reduce_only=st.booleans(),
       max_fee=st.integers(0, 2**256 - 1), chain_id=st.integers(1, 2**64))
def test_order_digest__equals_eth_accounts_general_eip712_encoder(market, is_buy, size, price, nonce, reduce_only,
                                                                  max_fee, chain_id):
    """The digest is hand-encoded for speed (every field is static); the general encoder must agree."""
    book = "0x" + "ab" * 20
    order = Order("0x" + "12" * 20, market, is_buy, size, price, 2**255, nonce, reduce_only, max_fee)
    signable = encode_typed_data(full_message=typed_data(order, chain_id, book))
    assert domain_separator(chain_id, book) == signable.header
    assert order_digest(order, chain_id, book) == keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=30, deadline=None)
@given(secret=st.integers(1, SECP256K1N - 1), nonce=st.integers(0, 2**64))
def test_sign_order__same_signature_as_eth_account(secret, nonce):
    """Orders are signed with libsecp256k1 directly; eth-account must make the very same bytes."""
    account = Account.from_key(secret.to_bytes(32, "big"))
    order = Order(account.address, 1, True, 5, 7, 2**40, nonce)
    digest = order_digest(order, 31337, "0x" + "ab" * 20)
    assert sign_order(account.key, order, 31337, "0x" + "ab" * 20) == account.unsafe_sign_hash(digest).signature
    assert sign_order(account, order, 31337, "0x" + "ab" * 20) == account.unsafe_sign_hash(digest).signature


def test_sign_order__refuses_another_traders_key():
    alice, bob = Account.from_key(b"\x01" * 32), Account.from_key(b"\x02" * 32)
    order = Order(alice.address, 0, True, 1, 1, 2**40, 1)
    for wrong in (bob, bob.key, "0x" + bytes(bob.key).hex()):
        with pytest.raises(ValueError, match="^orders: key does not belong to the order's trader$"):
            sign_order(wrong, order, 1, "0x" + "ab" * 20)
    assert sign_order("0x" + bytes(alice.key).hex(), order, 1, "0x" + "ab" * 20) == sign_order(alice, order, 1, "0x" + "ab" * 20)


def test_order_digest__refuses_a_field_out_of_range():
    order = Order("0x" + "12" * 20, -1, True, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="orders: -1 is not a uint256"):
        order_digest(order, 1, "0x" + "ab" * 20)


def test_eip712_domain__discoverable_as_eip5267(system):
    """A frontend reads the domain from the contract instead of the source."""
    ob = system.order_book
    fields, name, version, chain_id, contract, salt, extensions = ob.eip712Domain()
    assert bytes(fields) == b"\x0f"  # name, version, chainId, verifyingContract
    assert (name, version, chain_id, contract) == ("perpclear", "1", system.chain_id, ob.address)
    assert bytes(salt) == bytes(32) and list(extensions) == []


def test_settle__every_signature_form_a_wallet_produces(system, traders, settle):
    """65 bytes with v 27/28 or 0/1, and 64-byte EIP-2098 signatures, for both
    recovery ids: each passes the signature check (the unfunded trader then
    stops at the margin check, the positive control)."""
    u = system.unit
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    seen_v = set()
    for nonce in range(1, 12):
        bid, sig = system.order(traders[0], 0, True, WAD, 2_000 * u)
        sig = bytes(sig)
        r, s_, v = sig[:32], sig[32:64], sig[64]
        seen_v.add(v)
        compact = r + (int.from_bytes(s_, "big") | ((v - 27) << 255)).to_bytes(32, "big")
        for form in (sig, r + s_ + bytes([v - 27]), compact):
            with ape.reverts("clearing: below initial margin"):
                settle((bid, form), ask, WAD, 2_000 * u)
        if seen_v == {27, 28}:
            break
    assert seen_v == {27, 28}


# ---------------------------------------------------------------- forgeries


def test_settle__forged_signatures__reverts(system, traders, settle, sign_with, malleate):
    ch, ob, u = system.clearing_house, system.order_book, system.unit
    buyer, seller, stranger = traders[:3]
    for account in (buyer, seller):
        system.fund(account, 10_000 * u)
    ask = system.order(seller, 0, False, WAD, 2_000 * u)
    bid, bid_sig = system.order(buyer, 0, True, WAD, 2_000 * u)
    chain_id, address = system.chain_id, str(ob.address)

    # signed by a key that is not the trader's
    forged = sign_with(stranger.private_key, bid, chain_id, address)
    with ape.reverts("orders: signer is not the trader"):
        settle((bid, forged), ask, WAD, 2_000 * u)
    # the stranger's order in the buyer's name, signed by the stranger
    with ape.reverts("orders: signer is not the trader"):
        settle(ask, (bid, forged), WAD, 2_000 * u)
    # tampered: the trader signed 1 ETH, the matcher submits 2 ETH with that signature
    bigger = replace(bid, size=2 * WAD)
    with ape.reverts("orders: signer is not the trader"):
        settle((bigger, bid_sig), ask, WAD, 2_000 * u)
    # tampered reduce-only flag and limit price
    with ape.reverts("orders: signer is not the trader"):
        settle((replace(bid, reduce_only=True), bid_sig), ask, WAD, 2_000 * u)
    with ape.reverts("orders: signer is not the trader"):
        settle((replace(bid, limit_price=2_001 * u), bid_sig), ask, WAD, 2_000 * u)
    # malleable twin of the genuine signature: s' = n - s, v flipped
    twin = malleate(bytes(bid_sig))
    assert int.from_bytes(bytes(bid_sig)[32:64], "big") <= SECP256K1N_HALF < int.from_bytes(twin[32:64], "big")
    digest = order_digest(bid, chain_id, address)
    assert _recover(digest, twin) == _recover(digest, bytes(bid_sig)) == buyer.address  # same signer
    with ape.reverts("orders: signature s too high (malleable)"):
        settle((bid, twin), ask, WAD, 2_000 * u)
    with ape.reverts("orders: signature s too high (malleable)"):
        settle(ask, (bid, twin), WAD, 2_000 * u)  # as taker too
    # v other than 27/28 or 0/1, wrong lengths, garbage
    with ape.reverts("orders: signature v not 27/28 or 0/1"):
        settle((bid, bytes(bid_sig)[:64] + bytes([29])), ask, WAD, 2_000 * u)
    with ape.reverts("orders: signature length not 64 or 65"):
        settle((bid, bytes(bid_sig)[:63]), ask, WAD, 2_000 * u)
    with ape.reverts("orders: signature length not 64 or 65"):
        settle((bid, b""), ask, WAD, 2_000 * u)
    with ape.reverts("orders: signer is not the trader"):
        settle((bid, b"\x01" * 65), ask, WAD, 2_000 * u)
    # an order in the zero address's name with a signature ecrecover fails on (it returns zero)
    nobody = replace(bid, trader="0x" + "00" * 20)
    with ape.reverts("orders: signer is not the trader"):
        settle((nobody, bytes(32) + (1).to_bytes(32, "big") + bytes([27])), ask, WAD, 2_000 * u)
    assert ob.filled(bid.as_tuple()) == 0

    # the genuine signature settles
    settle((bid, bid_sig), ask, WAD, 2_000 * u)
    assert ch.positions(buyer, 0).size == WAD
    assert ob.filled(bid.as_tuple()) == WAD


def test_settle__contract_trader_signs_through_eip1271(system, traders, settle, wallet_container, admin):
    ob, u = system.order_book, system.unit
    wallet = wallet_container.deploy(sender=admin)
    order = Order(
        trader=str(wallet.address), market=0, is_buy=True, size=WAD, limit_price=2_000 * u,
        expiry=system.clearing_house.provider.get_block("latest").timestamp + 3_600, nonce=1,
    )
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    with ape.reverts("orders: contract signature refused"):  # not approved by the wallet yet
        settle((order, b""), ask, WAD, 2_000 * u)
    wallet.approve_hash(ob.order_hash(order.as_tuple()), sender=admin)
    # approved: any signature bytes pass; the (unfunded) wallet stops at the margin check
    with ape.reverts("clearing: below initial margin"):
        settle((order, b""), ask, WAD, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(ask, (order, b"\x01" * 65), WAD, 2_000 * u)
    # a wallet's approval of another order does not carry over
    with ape.reverts("orders: contract signature refused"):
        settle((replace(order, nonce=2), b""), ask, WAD, 2_000 * u)


# ---------------------------------------------------------------- replay


def test_settle__order_signed_for_another_chain__reverts(system, traders, settle):
    u, ob = system.unit, system.order_book
    bid, _ = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    other_chain = sign_order(traders[0].private_key, bid, system.chain_id + 1, str(ob.address))
    with ape.reverts("orders: signer is not the trader"):
        settle((bid, other_chain), ask, WAD, 2_000 * u)
    this_chain = sign_order(traders[0].private_key, bid, system.chain_id, str(ob.address))
    with ape.reverts("clearing: below initial margin"):
        settle((bid, this_chain), ask, WAD, 2_000 * u)


def test_settle__order_signed_for_the_clearing_house__reverts(system, traders, settle):
    """Orders signed for the pre-split domain (verifyingContract = the clearing
    house) are void on the order book."""
    u, ch = system.unit, system.clearing_house
    bid, _ = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask, _ = system.order(traders[1], 0, False, WAD, 2_000 * u)
    old_bid = sign_order(traders[0].private_key, bid, system.chain_id, str(ch.address))
    old_ask = sign_order(traders[1].private_key, ask, system.chain_id, str(ch.address))
    with ape.reverts("orders: signer is not the trader"):
        settle((bid, old_bid), (ask, old_ask), WAD, 2_000 * u)


def test_settle__order_signed_for_another_deployment__reverts(make_system, system, traders, settle):
    u = system.unit
    # A second, complete (and ledger-guarded) system on the same chain.
    other = make_system()
    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    assert other.order_book.order_hash(bid[0].as_tuple()) != system.order_book.order_hash(bid[0].as_tuple())

    with ape.reverts("orders: signer is not the trader"):
        settle(bid, ask, WAD, 2_000 * u, book=other.order_book)
    # the same orders are good on the deployment they were signed for (unfunded: margin check)
    with ape.reverts("clearing: below initial margin"):
        settle(bid, ask, WAD, 2_000 * u)
    # and orders signed for the other deployment are void on this one
    other_bid, other_ask = other.order(traders[0], 0, True, WAD, 2_000 * u), other.order(traders[1], 0, False, WAD, 2_000 * u)
    with ape.reverts("orders: signer is not the trader"):
        settle(other_bid, other_ask, WAD, 2_000 * u)
    with ape.reverts("clearing: below initial margin"):
        settle(other_bid, other_ask, WAD, 2_000 * u, book=other.order_book)


def test_settle__rogue_order_book_cannot_book_fills(system, project, admin, matcher, traders, settle):
    """A second order book pointed at the same clearing house: orders signed for
    the real book are void on it, and orders signed for it are refused by the
    clearing house, which books fills from its own order book only."""
    ch, u = system.clearing_house, system.unit
    for account in traders[:2]:
        system.fund(account, 10_000 * u)
    rogue = project.OrderBook.deploy(ch, sender=admin)
    rogue.set_matcher(matcher, True, sender=admin)
    assert (rogue.clearing_house(), ch.order_book()) == (ch.address, system.order_book.address)

    bid = system.order(traders[0], 0, True, WAD, 2_000 * u)
    ask = system.order(traders[1], 0, False, WAD, 2_000 * u)
    with ape.reverts("orders: signer is not the trader"):
        settle(bid, ask, WAD, 2_000 * u, book=rogue)
    rogue_bid, rogue_ask = (
        (o, sign_order(t.private_key, o, system.chain_id, str(rogue.address)))
        for o, t in ((bid[0], traders[0]), (ask[0], traders[1]))
    )
    with ape.reverts("clearing: not order book"):
        settle(rogue_bid, rogue_ask, WAD, 2_000 * u, book=rogue)
    assert ch.positions(traders[0], 0).size == 0
    settle(bid, ask, WAD, 2_000 * u)  # the real book still works
    assert ch.positions(traders[0], 0).size == WAD
