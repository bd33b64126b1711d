"""The BCS primitives and small values (soma_ray.protocol.wire.bcs / .base), protocol.md §13.3, §2.3.

Expected bytes are written out by hand from the BCS specification (ULEB128 lengths, little-endian
integers) and from §2.3's worked `BCS(SomaTensor)` example; round trips run over hypothesis-drawn
values (`FUZZ_EXAMPLES` scales them).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma_ray.protocol.commitments import bcs_tensor
from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.base import Manifest, ObjectRef, SomaTensor, address_hex, parse_address
from soma_ray.protocol.wire.bcs import BcsError, Reader, decode_all
from tests.kit import FUZZ
from tests.protocol import kit

ULEB = [
    (0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (255, "ff01"), (300, "ac02"), (16_383, "ff7f"),
    (16_384, "808001"), (2**31 - 1, "ffffffff07"),
]


@pytest.mark.parametrize(("value", "hex_"), ULEB)
def test_uleb128_known_values(value: int, hex_: str) -> None:
    assert bcs.uleb128(value).hex() == hex_
    assert decode_all(bytes.fromhex(hex_), Reader.uleb128) == value


@pytest.mark.parametrize(
    "hex_",
    [
        "8000",  # 0 with a needless continuation byte
        "ff00",  # 127 spelled in two bytes
        "8080808010",  # 2^32: above u32
        "ffffffff0f",  # 2^32 - 1: above the BCS sequence limit 2^31 - 1
        "8080808080",  # six bytes
        "80",  # truncated
    ],
)
def test_uleb128_rejects_non_canonical_and_oversized(hex_: str) -> None:
    with pytest.raises(BcsError):
        decode_all(bytes.fromhex(hex_), Reader.uleb128)


def test_uleb128_encoder_bounds() -> None:
    with pytest.raises(BcsError):
        bcs.uleb128(-1)
    with pytest.raises(BcsError):
        bcs.uleb128(2**31)


def test_integers_bool_bytes_string_option_vector() -> None:
    assert bcs.u8(0xAB) == b"\xab"
    assert bcs.u32(1) == b"\x01\x00\x00\x00"
    assert bcs.u64(0x0102030405060708) == bytes.fromhex("0807060504030201")
    assert bcs.u64(2**64 - 1) == b"\xff" * 8
    assert bcs.boolean(True) == b"\x01" and bcs.boolean(False) == b"\x00"
    assert bcs.byte_vector(b"abc") == b"\x03abc"
    assert bcs.byte_vector(b"x" * 200)[:2] == b"\xc8\x01"
    assert bcs.string("é") == b"\x02\xc3\xa9"
    assert bcs.option(None, bcs.u64) == b"\x00"
    assert bcs.option(5, bcs.u64) == b"\x01" + struct.pack("<Q", 5)
    assert bcs.vector([1, 2], bcs.u64) == b"\x02" + struct.pack("<QQ", 1, 2)
    assert bcs.fixed(b"\x07" * 32, 32) == b"\x07" * 32
    bad: list[Callable[[], bytes]] = [
        lambda: bcs.u64(2**64), lambda: bcs.u64(-1), lambda: bcs.u8(256), lambda: bcs.fixed(b"1", 32)
    ]
    for call in bad:
        with pytest.raises(BcsError):
            call()


@pytest.mark.parametrize(
    ("hex_", "read"),
    [
        ("02", Reader.boolean),
        ("02", lambda r: r.option(Reader.u64)),
        ("02ff", Reader.string),  # invalid UTF-8
        ("0500", Reader.byte_vector),  # shorter than its length
        ("01000000000000", Reader.u64),  # 7 bytes
        ("0000", Reader.u8),  # trailing byte
    ],
)
def test_reader_rejects_malformed(hex_: str, read: object) -> None:
    with pytest.raises(BcsError):
        decode_all(bytes.fromhex(hex_), read)  # type: ignore[arg-type]


U64 = st.integers(0, 2**64 - 1)


@FUZZ
@given(
    n=st.one_of(st.integers(0, 2**31 - 1), st.integers(0, 200), st.just(2**31 - 1)),
    x=U64,
    raw=st.binary(max_size=300),
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
    items=st.lists(U64, max_size=4),
    opt=st.none() | U64,
)
def test_primitive_round_trips(n: int, x: int, raw: bytes, text: str, items: list[int], opt: int | None) -> None:
    assert decode_all(bcs.uleb128(n), Reader.uleb128) == n
    assert decode_all(bcs.u64(x), Reader.u64) == x
    assert decode_all(bcs.byte_vector(raw), Reader.byte_vector) == raw
    assert decode_all(bcs.string(text), Reader.string) == text
    assert decode_all(bcs.vector(items, bcs.u64), lambda r: r.vector(Reader.u64)) == items
    assert decode_all(bcs.option(opt, bcs.u64), lambda r: r.option(Reader.u64)) == opt


# --------------------------------------------------------------------------------------------- small values


def test_soma_tensor_matches_section_2_3_example() -> None:
    """§2.3: 2048 dims → `00 80 40 <8192 bytes> 01 00 08 00 00 00 00 00 00`."""
    values = np.arange(2048, dtype="<f4") / 7
    encoded = SomaTensor.from_values(values.tolist()).encode()
    assert encoded[:3] == bytes.fromhex("008040")
    assert encoded[3:-9] == values.tobytes()
    assert encoded[-9:] == bytes.fromhex("010008000000000000")
    assert encoded == bcs_tensor(values)


def test_soma_tensor_equals_commitments_bcs_tensor_on_random_values() -> None:
    rng = np.random.default_rng(3)
    for n in (0, 1, 5, 64):
        values = rng.standard_normal(n).astype("<f4")
        assert SomaTensor.from_values(values.tolist()).encode() == bcs_tensor(values)
    scalar = SomaTensor.from_values([0.25])
    assert scalar.shape == (1,) and scalar.encode() == bcs_tensor([0.25])


def test_soma_tensor_keeps_bits_and_checks_its_length() -> None:
    weird = struct.pack("<3I", 0x7FC00001, 0x80000000, 0x7F800000)  # NaN payload, -0.0, +inf
    t = SomaTensor(weird, (3,))
    assert SomaTensor.decode(t.encode()).data == weird
    with pytest.raises(BcsError):
        SomaTensor(b"\x00" * 7, (2,))
    with pytest.raises(BcsError):
        SomaTensor.decode(bytes.fromhex("00" "04" "0000803f" "01" "0200000000000000"))  # 1 value, shape [2]
    with pytest.raises(BcsError):
        SomaTensor.decode(bytes.fromhex("01" "04" "0000803f" "01" "0100000000000000"))  # dtype 1


def test_object_ref_layout() -> None:
    oid, digest = bytes(range(32)), bytes(range(32, 64))
    encoded = ObjectRef(oid, 9, digest).encode()
    assert encoded == oid + struct.pack("<Q", 9) + b"\x20" + digest  # id raw, digest length-prefixed
    assert ObjectRef.decode(encoded) == ObjectRef(oid, 9, digest)


def test_manifest_layout() -> None:
    checksum = bytes(range(32))
    url = "https://example.com/w"
    expected = b"\x00" + bytes((len(url),)) + url.encode() + b"\x00" + b"\x20" + checksum + struct.pack("<Q", 1234)
    assert Manifest(url, checksum, 1234).encode() == expected
    assert Manifest.decode(expected) == Manifest(url, checksum, 1234)
    with pytest.raises(BcsError):
        Manifest("not a url", checksum, 1)
    with pytest.raises(BcsError):
        Manifest.decode(b"\x01" + expected[1:])  # Manifest::V2 does not exist


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_value_round_trips(rng: random.Random) -> None:
    t = kit.tensor(rng)
    assert SomaTensor.decode(t.encode()) == t
    r = kit.object_ref(rng)
    assert ObjectRef.decode(r.encode()) == r
    m = kit.manifest(rng, normalized_urls=False)
    assert Manifest.decode(m.encode()) == m


def test_address_text() -> None:
    raw = bytes(range(32))
    assert address_hex(raw) == "0x" + raw.hex()
    assert parse_address(raw.hex()) == raw
    assert parse_address("0x" + raw.hex().upper()) == raw
    assert parse_address("0x2") == bytes(31) + b"\x02"
    for bad in ("", "0x", "xyz", "0x" + "0" * 65):
        with pytest.raises(ValueError):
            parse_address(bad)
