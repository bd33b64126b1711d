"""A minimal BCS (Binary Canonical Serialization) encoder and decoder (protocol.md §13.3).

Only what SOMA's transaction and object types use: ULEB128 lengths and variant indices, `u8`,
`u32`, `u64`, `bool`, length-prefixed byte strings (`Vec<u8>` and serde bytes such as `Digest`),
UTF-8 strings, fixed-size arrays (addresses, object ids), vectors, options, and enums written as
their variant index. All integers are little endian. The decoder is strict the way Rust's `bcs`
crate is: non-canonical ULEB128, lengths above 2^31 - 1, booleans and option tags other than 0/1,
invalid UTF-8 and trailing bytes are errors.

Encoders are plain functions returning `bytes`; decoding goes through `Reader`, a cursor over an
immutable buffer. Nothing here does I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

MAX_SEQUENCE_LENGTH = (1 << 31) - 1
"""Rust `bcs::MAX_SEQUENCE_LENGTH`: the largest length or variant index BCS accepts."""

U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1


class BcsError(ValueError):
    """Bytes that are not the canonical BCS of the expected type (or a value that cannot be encoded)."""


# --------------------------------------------------------------------------------------------- encode


def uleb128(value: int) -> bytes:
    """ULEB128 of a length or variant index (0 ≤ value ≤ 2^31 - 1)."""
    if not 0 <= value <= MAX_SEQUENCE_LENGTH:
        raise BcsError(f"length or variant index out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def u8(value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise BcsError(f"u8 out of range: {value}")
    return bytes((value,))


def u32(value: int) -> bytes:
    if not 0 <= value <= U32_MAX:
        raise BcsError(f"u32 out of range: {value}")
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    if not 0 <= value <= U64_MAX:
        raise BcsError(f"u64 out of range: {value}")
    return struct.pack("<Q", value)


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def byte_vector(value: bytes) -> bytes:
    """`Vec<u8>` and serde bytes (a `Digest`): ULEB128 length, then the bytes."""
    return uleb128(len(value)) + bytes(value)


def string(value: str) -> bytes:
    """`String`: ULEB128 length of the UTF-8 bytes, then the bytes."""
    return byte_vector(value.encode("utf-8"))


def fixed(value: bytes, length: int) -> bytes:
    """`[u8; N]`: exactly `length` bytes, no length prefix."""
    if len(value) != length:
        raise BcsError(f"expected {length} bytes, got {len(value)}")
    return bytes(value)


def vector(items: Iterable[T], encode: Callable[[T], bytes]) -> bytes:
    """`Vec<T>` (and `BTreeSet<T>`, whose items must already be in order): length, then each item."""
    parts = [encode(item) for item in items]
    return uleb128(len(parts)) + b"".join(parts)


def option(value: T | None, encode: Callable[[T], bytes]) -> bytes:
    """`Option<T>`: 0 for None, 1 then the value for Some."""
    return b"\x00" if value is None else b"\x01" + encode(value)


def variant(index: int) -> bytes:
    """The tag of an enum variant: its index as ULEB128."""
    return uleb128(index)


# --------------------------------------------------------------------------------------------- decode


class Reader:
    """A cursor over BCS bytes. Each method consumes one value or raises `BcsError`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def position(self) -> int:
        """Offset of the next unread byte."""
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise BcsError(f"unexpected end of input: wanted {n} bytes at offset {self._pos}, have {self.remaining}")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def since(self, start: int) -> bytes:
        """The bytes consumed from offset `start` up to now (to keep a value's exact encoding)."""
        return self._data[start : self._pos]

    def finish(self) -> None:
        """Every byte must have been consumed (Rust `bcs::from_bytes` rejects trailing bytes)."""
        if self.remaining:
            raise BcsError(f"{self.remaining} trailing bytes at offset {self._pos}")

    def uleb128(self) -> int:
        value = 0
        shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if shift and byte == 0:
                    raise BcsError("non-canonical ULEB128 (trailing zero byte)")
                break
            shift += 7
            if shift > 28:
                raise BcsError("ULEB128 longer than a u32")
        if value > MAX_SEQUENCE_LENGTH:
            raise BcsError(f"length or variant index too large: {value}")
        return value

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack("<Q", self.take(8))[0]
        return value

    def boolean(self) -> bool:
        byte = self.u8()
        if byte > 1:
            raise BcsError(f"invalid bool byte {byte}")
        return byte == 1

    def byte_vector(self) -> bytes:
        return self.take(self.uleb128())

    def string(self) -> str:
        raw = self.byte_vector()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BcsError(f"invalid UTF-8 in string: {e}") from e

    def fixed(self, length: int) -> bytes:
        return self.take(length)

    def vector(self, read: Callable[[Reader], T]) -> list[T]:
        return [read(self) for _ in range(self.uleb128())]

    def option(self, read: Callable[[Reader], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag == 1:
            return read(self)
        raise BcsError(f"invalid option tag {tag}")

    def variant(self, count: int, type_name: str) -> int:
        """An enum tag; `count` variants are known, anything else is an error naming `type_name`."""
        index = self.uleb128()
        if index >= count:
            raise BcsError(f"unknown {type_name} variant index {index} (known: 0..{count - 1})")
        return index


def decode_all(data: bytes, read: Callable[[Reader], T]) -> T:
    """Decode exactly one value from `data`; trailing bytes are an error."""
    reader = Reader(data)
    value = read(reader)
    reader.finish()
    return value
