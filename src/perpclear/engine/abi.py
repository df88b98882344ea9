"""The ABI codec every engine shares.

eth-abi's general codec, with two changes that matter on a cascade of
millions of values: addresses are encoded without a checksum check and
decoded straight to their cached EIP-55 form (each check is a keccak), and
the types the contracts take and return on the hot path (static words,
tuples of them, ``bytes`` and arrays of elementary types) are written and
read word by word. Anything else, and any value the fast path does not take,
goes to eth-abi, so errors read the same. ``tests/cascade/test_engines.py``
checks both directions against eth-abi under Hypothesis.
"""

from __future__ import annotations

import functools
import re

from eth_abi.codec import ABICodec
from eth_abi.decoding import AddressDecoder
from eth_abi.encoding import AddressEncoder
from eth_abi.registry import BaseEquals, registry as _default_registry
from eth_utils import to_checksum_address as _to_checksum_address


@functools.lru_cache(maxsize=1 << 16)
def to_checksum_address(address: str | bytes) -> str:
    """EIP-55 form, cached: a cascade sees a few thousand addresses millions of times."""
    return _to_checksum_address(address)


class _Address(AddressEncoder):
    """Address encoding without eth-utils' per-call checksum validation (a keccak each)."""

    @classmethod
    def validate_value(cls, value):
        if isinstance(value, (bytes, bytearray)) and len(value) == 20:
            return
        try:
            _address_word(value)  # the fast path's check: one rule for both
        except (_Unfit, TypeError):
            cls.invalidate_value(value)

    @staticmethod
    def encode_fn(value):
        return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


class _AddressOut(AddressDecoder):
    """Addresses decoded straight to their (cached) EIP-55 form."""

    @staticmethod
    def decoder_fn(data):
        return to_checksum_address(data)


_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_registry = _default_registry.copy()
_registry.unregister("address")
_registry.register(BaseEquals("address"), _Address, _AddressOut, label="address")
_codec = ABICodec(_registry)


def _tuple_parts(typ: str) -> list[str]:
    """The component types of a tuple type such as ``(uint256,(bool,address))``."""
    parts, depth, start = [], 0, 1
    for i, ch in enumerate(typ[1:-1], start=1):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(typ[start:i])
            start = i + 1
    parts.append(typ[start:-1])
    return parts


class _Unfit(Exception):
    """A value the fast encoder does not take: eth-abi's encoder decides (and explains)."""


@functools.lru_cache(maxsize=1 << 16)
def _address_word(v: str) -> bytes:
    """``0x`` and 40 hex digits as its ABI word (cached: the same addresses recur)."""
    if len(v) == 42 and v[:2] in ("0x", "0X") and _HEX40.fullmatch(v, 2):
        return b"\0" * 12 + bytes.fromhex(v[2:])
    raise _Unfit


def _word_writer(typ: str):
    """How to write one value of an elementary static type as its 32-byte word (None: not one)."""
    if typ == "bool":
        def write(v):
            if not isinstance(v, bool):
                raise _Unfit
            return b"\0" * 31 + (b"\1" if v else b"\0")
        return write
    if typ == "address":
        def write(v):
            if isinstance(v, str):
                return _address_word(v)
            raise _Unfit
        return write
    if m := re.fullmatch(r"(u?)int(\d*)", typ):
        bits, signed = int(m.group(2) or 256), not m.group(1)
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
        def write(v):
            if type(v) is not int or not lo <= v < hi:
                raise _Unfit
            return v.to_bytes(32, "big", signed=signed)
        return write
    if m := re.fullmatch(r"bytes(\d+)", typ):
        n = int(m.group(1))
        def write(v):
            if not isinstance(v, (bytes, bytearray)) or len(v) > n:
                raise _Unfit
            return bytes(v).ljust(32, b"\0")
        return write
    return None


def _static_writer(typ: str):
    """How to write a value of a static type (elementary types and tuples of them), else None."""
    if typ.startswith("(") and typ.endswith(")"):
        parts = [_static_writer(t) for t in _tuple_parts(typ)]
        if not all(parts):
            return None

        def write(v):
            if not isinstance(v, (tuple, list)) or len(v) != len(parts):
                raise _Unfit
            return b"".join(w(x) for w, x in zip(parts, v))

        return write
    return _word_writer(typ)


def _tail_writer(typ: str):
    """How to write the tail of a dynamic ``bytes`` or array of an elementary type, else None."""
    if typ == "bytes":
        def write(v):
            if not isinstance(v, (bytes, bytearray)):
                raise _Unfit
            return len(v).to_bytes(32, "big") + bytes(v).ljust(-(-len(v) // 32) * 32, b"\0")
        return write
    if typ.endswith("[]") and (item := _word_writer(typ[:-2])):
        def write(v):
            if not isinstance(v, (tuple, list)):
                raise _Unfit
            return len(v).to_bytes(32, "big") + b"".join(map(item, v))
        return write
    return None


@functools.lru_cache(maxsize=None)
def _encoder(types: tuple[str, ...]):
    """An encoder for ``types`` when each is static, ``bytes`` or an array of an
    elementary type (every call the runner makes); eth-abi's otherwise, and
    eth-abi's for any value the fast path does not take, so errors read the same."""
    general = functools.partial(_codec.encode, list(types))
    parts = []
    for t in types:
        if static := _static_writer(t):
            parts.append((static, None))
        elif tail := _tail_writer(t):
            parts.append((None, tail))
        else:
            return general

    def encode(values) -> bytes:
        try:
            if len(values) != len(parts):
                raise _Unfit
            pieces = [(static(v), None) if static else (None, tail(v)) for (static, tail), v in zip(parts, values)]
        except _Unfit:
            return general(values)
        offset = sum(32 if head is None else len(head) for head, _ in pieces)
        heads, tails = [], []
        for head, tail in pieces:
            if head is None:
                heads.append(offset.to_bytes(32, "big"))
                tails.append(tail)
                offset += len(tail)
            else:
                heads.append(head)
        return b"".join(heads) + b"".join(tails)

    return encode


def abi_encode(types: list[str], values) -> bytes:
    """ABI-encodes ``values`` as ``types``."""
    return _encoder(tuple(types))(values)




def _word_reader(typ: str):
    """How to read one 32-byte word of an elementary static type (None: not one)."""
    if typ == "bool":
        return lambda w: w[31] != 0
    if typ == "address":
        return lambda w: to_checksum_address(w[12:])
    if re.fullmatch(r"uint\d*", typ):
        return lambda w: int.from_bytes(w, "big")
    if re.fullmatch(r"int\d*", typ):
        return lambda w: int.from_bytes(w, "big", signed=True)
    if m := re.fullmatch(r"bytes(\d+)", typ):
        n = int(m.group(1))
        return lambda w: w[:n]
    return None


def _flat_reader(typ: str):
    """(word readers, shape) of a static type made of elementary types and
    tuples of them, else None; ``shape`` is None for one value, else the
    shapes of the tuple's components."""
    if typ.startswith("(") and typ.endswith(")"):
        parts = [_flat_reader(t) for t in _tuple_parts(typ)]
    elif fixed := re.fullmatch(r"(.+)\[(\d+)\]", typ):  # T[k]: k values of T, as a tuple
        parts = [_flat_reader(fixed.group(1))] * int(fixed.group(2))
    else:
        parts = None
    if parts is not None:
        if not all(parts):
            return None
        return [r for readers, _ in parts for r in readers], [shape for _, shape in parts]
    read = _word_reader(typ)
    return ([read], None) if read else None


def _build(shape, values):
    """Regroups the flat ``values`` iterator into the tuples of ``shape``."""
    return next(values) if shape is None else tuple(_build(s, values) for s in shape)


@functools.lru_cache(maxsize=None)
def _decoder(types: tuple[str, ...]):
    """A decoder for ``types``: word by word when they are static (elementary
    types, fixed arrays and tuples of them), or one array of such a type (what
    the contracts return and log on the hot path, several times faster than
    eth-abi's general decoder); eth-abi's otherwise."""
    flat = _flat_reader(f"({','.join(types)})")
    if flat:
        readers, shapes = flat
        plan = [(read, 32 * i, 32 * i + 32) for i, read in enumerate(readers)]
        nested = any(s is not None for s in shapes)

        def words(raw: bytes) -> tuple:
            if len(raw) < 32 * len(plan):
                raise ValueError(f"{len(raw)} bytes is too short for {types}")
            values = [read(raw[a:b]) for read, a, b in plan]
            if not nested:
                return tuple(values)
            flow = iter(values)
            return tuple(_build(s, flow) for s in shapes)

        return words
    if len(types) == 1 and types[0].endswith("[]") and (item := _flat_reader(types[0][:-2])):
        readers, shape = item
        size = 32 * len(readers)

        def array(raw: bytes) -> tuple:
            start = int.from_bytes(raw[:32], "big") + 32
            end = start + size * int.from_bytes(raw[start - 32 : start], "big")
            if end > len(raw):
                raise ValueError(f"{len(raw)} bytes is too short for {types}")
            if shape is None:  # an elementary type
                read = readers[0]
                return (tuple(read(raw[i : i + 32]) for i in range(start, end, 32)),)
            flow = iter([read(raw[j : j + 32]) for i in range(start, end, size)
                         for j, read in zip(range(i, i + size, 32), readers)])
            return (tuple(_build(shape, flow) for _ in range(start, end, size)),)

        return array
    return functools.partial(_codec.decode, list(types))


def abi_decode(types: list[str], raw: bytes) -> tuple:
    """ABI-decodes ``raw`` as ``types`` (addresses in EIP-55 form)."""
    return _decoder(tuple(types))(raw)
