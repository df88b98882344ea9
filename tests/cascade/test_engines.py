"""The engines refuse a reverting transaction the same way (EngineError naming the call and the
contract's reason), and their ABI codec agrees with eth-abi's."""

import eth_abi
import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from perpclear.deployment import deploy
from perpclear.engine import IN_PROCESS, EngineError, Tx, abi_decode, abi_encode
from perpclear.engine.chain import sign_1559
from perpclear.scenario import load_scenario


@pytest.mark.parametrize("name", sorted(IN_PROCESS))
def test_a_revert_names_the_call_and_the_reason(name):
    engine = IN_PROCESS[name]()
    d = deploy(engine, load_scenario("mild-dip"))
    with pytest.raises(EngineError, match=r"^ClearingHouse\.deposit reverted: clearing: zero amount$"):
        engine.send([Tx(d.roles.admin, d.clearing_house, "deposit", (0,))])
    with pytest.raises(EngineError, match=r"^OrderBook\.set_matcher reverted: ownership: not owner$"):
        engine.send([Tx(d.roles.keeper, d.order_book, "set_matcher", (d.roles.keeper.address, True))])
    assert engine.call(d.clearing_house, "market_count") == 1


@pytest.mark.parametrize("name", sorted(IN_PROCESS))
def test_snapshot_advance_and_struct_views(name):
    """``snapshot`` puts state, clock and the engine's log book back; ``advance``
    moves the clock; a view returning a struct answers with its field names."""
    engine = IN_PROCESS[name]()
    d = deploy(engine, load_scenario("mild-dip"))
    start, sent, logs = engine.timestamp(), engine.block_number(), len(engine.logs([d.clearing_house]))
    trader = Account.from_key(b"\x07" * 32)
    with engine.snapshot():
        d.fund([(trader, 10**9)])
        engine.advance(3_600)
        assert engine.timestamp() == start + 3_600
        assert engine.call(d.clearing_house, "collateral", trader.address) == 10**9
        assert len(engine.logs([d.clearing_house])) > logs
    assert engine.timestamp() == start
    assert engine.block_number() == sent
    assert len(engine.logs([d.clearing_house])) == logs
    assert engine.call(d.clearing_house, "collateral", trader.address) == 0
    position = engine.call(d.clearing_house, "positions", trader.address, 0)
    assert position == (0, 0, 0, 0) and position.open_notional == 0
    assert engine.call(d.clearing_house, "health", trader.address)._fields == ("equity", "maintenance", "initial")


# The engines' ABI codec: word-by-word fast paths must agree with eth-abi's general codec.
_ELEMENTARY = {
    "uint256": st.integers(0, 2**256 - 1), "uint64": st.integers(0, 2**64 - 1), "int256": st.integers(-(2**255), 2**255 - 1),
    "int128": st.integers(-(2**127), 2**127 - 1), "bool": st.booleans(), "bytes32": st.binary(min_size=32, max_size=32),
    "address": st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
}


@st.composite
def _values(draw):
    if draw(st.booleans()):  # static: elementary types and tuples of them
        types, values = [], []
        for _ in range(draw(st.integers(1, 6))):
            inner = draw(st.lists(st.sampled_from(sorted(_ELEMENTARY)), min_size=1, max_size=4))
            if draw(st.booleans()):
                types.append(f"({','.join(inner)})")
                values.append(tuple(draw(_ELEMENTARY[t]) for t in inner))
            else:
                types.append(inner[0])
                values.append(draw(_ELEMENTARY[inner[0]]))
        return types, values
    t = draw(st.sampled_from(sorted(_ELEMENTARY)))
    if draw(st.booleans()):
        return [t + "[]"], [draw(st.lists(_ELEMENTARY[t], max_size=20))]
    # an array of tuples with a fixed array inside, as the lens's account_states
    other = draw(st.sampled_from(sorted(_ELEMENTARY)))
    row = st.tuples(_ELEMENTARY[t], st.tuples(*[_ELEMENTARY[other]] * 3))
    return [f"({t},{other}[3])[]"], [draw(st.lists(row, max_size=6))]


@settings(max_examples=300, deadline=None)
@given(_values())
def test_codec__fast_decoding_equals_eth_abi(case):
    types, values = case
    raw = abi_encode(types, values)
    assert raw == eth_abi.encode(types, values)

    def eip55(v):  # eth-abi decodes addresses lower-case; the engines give the EIP-55 form
        return tuple(map(eip55, v)) if isinstance(v, tuple) else to_checksum_address(v) if isinstance(v, str) else v

    assert abi_decode(types, raw) == eip55(eth_abi.decode(types, raw))


def test_codec__refuses_short_data_and_bad_addresses():
    with pytest.raises(ValueError, match="too short"):
        abi_decode(["uint256", "bool"], bytes(32))
    with pytest.raises(ValueError, match="too short"):
        abi_decode(["int256[]"], abi_encode(["int256[]"], [[1, 2]])[:-32])
    for bad in ("0x12", "0x" + "zz" * 20, 5, b"\x01" * 19):
        with pytest.raises(eth_abi.exceptions.EncodingError):
            abi_encode(["address"], [bad])


@settings(max_examples=60, deadline=None)
@given(secret=st.integers(1, 2**255), nonce=st.integers(0, 2**64 - 1), fee=st.integers(0, 10**12),
       tip=st.integers(0, 10**9), value=st.integers(0, 10**24), data=st.binary(max_size=300),
       to=st.none() | st.binary(min_size=20, max_size=20).map(to_checksum_address))
def test_sign_1559__same_raw_transaction_as_eth_account(secret, nonce, fee, tip, value, data, to):
    """The chain engine signs its own transactions (libsecp256k1); eth-account must make the very same bytes."""
    account = Account.from_key(secret.to_bytes(32, "big"))
    tx = {"chainId": 31337, "nonce": nonce, "gas": 3_000_000, "value": value, "data": data, "type": 2,
          "maxFeePerGas": fee + tip, "maxPriorityFeePerGas": tip}
    if to is not None:
        tx["to"] = to
    expected = bytes(account.sign_transaction(tx).raw_transaction)
    assert sign_1559(account.key, 31337, nonce, tip, fee + tip, 3_000_000, to, value, data) == expected
