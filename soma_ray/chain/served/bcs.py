"""A minimal BCS writer and reader for what the served network encodes itself.

BCS (Binary Canonical Serialization): fixed-width little-endian integers, ULEB128 lengths for
sequences, strings and byte vectors, a ULEB128 variant index for enums, one 0/1 byte for an
`Option`'s tag. The faucet, admin and scoring services carry BCS bodies (protocol.md §13.1), and
object `contents` (coins, targets) are BCS too.

Kept deliberately small; the transaction codec (`soma_ray.protocol.wire`) is the full one, and
these helpers can defer to it once both are merged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class BcsError(ValueError):
    """Bytes that are not the BCS value expected."""


def uleb128(value: int) -> bytes:
    if value < 0:
        raise BcsError(f"ULEB128 needs a non-negative integer, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Writer:
    """Appends BCS values; `bytes(writer)` is the encoding."""

    def __init__(self) -> None:
        self._out = bytearray()

    def __bytes__(self) -> bytes:
        return bytes(self._out)

    def u8(self, value: int) -> Writer:
        self._out += struct.pack("<B", value)
        return self

    def u32(self, value: int) -> Writer:
        self._out += struct.pack("<I", value)
        return self

    def u64(self, value: int) -> Writer:
        self._out += struct.pack("<Q", value)
        return self

    def boolean(self, value: bool) -> Writer:
        return self.u8(1 if value else 0)

    def length(self, n: int) -> Writer:
        self._out += uleb128(n)
        return self

    def variant(self, index: int) -> Writer:
        return self.length(index)

    def raw(self, data: bytes) -> Writer:
        """Fixed-size bytes (an address, an object id): no length prefix."""
        self._out += data
        return self

    def blob(self, data: bytes) -> Writer:
        """A byte vector (or serde `Bytes` field): ULEB128 length, then the bytes."""
        return self.length(len(data)).raw(data)

    def string(self, text: str) -> Writer:
        return self.blob(text.encode())

    def seq(self, items: Iterable[T], write: Callable[[Writer, T], object]) -> Writer:
        values = list(items)
        self.length(len(values))
        for item in values:
            write(self, item)
        return self

    def option(self, value: T | None, write: Callable[[Writer, T], object]) -> Writer:
        if value is None:
            return self.u8(0)
        self.u8(1)
        write(self, value)
        return self


class Reader:
    """Reads BCS values from `data` in order; `finish()` checks nothing is left over."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise BcsError(f"BCS value ends early: wanted {n} bytes at offset {self._pos} of {len(self._data)}")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self) -> int:
        return int(self._take(1)[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self._take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self._take(8))[0])

    def boolean(self) -> bool:
        byte = self.u8()
        if byte > 1:
            raise BcsError(f"invalid BCS bool {byte}")
        return byte == 1

    def length(self) -> int:
        value = shift = 0
        while True:
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise BcsError("ULEB128 length too long")

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def blob(self) -> bytes:
        return self._take(self.length())

    def string(self) -> str:
        try:
            return self.blob().decode()
        except UnicodeDecodeError as err:
            raise BcsError(f"BCS string is not UTF-8: {err}") from None

    def seq(self, read: Callable[[Reader], T]) -> list[T]:
        n = self.length()
        if n > len(self._data) - self._pos:  # every element takes at least one byte
            raise BcsError(f"BCS sequence of {n} items cannot fit in {len(self._data) - self._pos} bytes")
        return [read(self) for _ in range(n)]

    def option(self, read: Callable[[Reader], T]) -> T | None:
        tag = self.u8()
        if tag == 0:
            return None
        if tag != 1:
            raise BcsError(f"invalid BCS option tag {tag}")
        return read(self)

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise BcsError(f"{len(self._data) - self._pos} unexpected trailing bytes after the BCS value")
