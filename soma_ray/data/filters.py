"""Small composable filters over a stream of samples (`Iterable[bytes] -> Iterator[bytes]`).

`apply_filters` chains them in the documented order: drop empty samples, size bounds,
UTF-8 only, exact dedup, limit. Each filter counts what it drops in an optional
`FilterStats`, which a progress display can read while the stream runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

__all__ = [
    "FilterStats",
    "apply_filters",
    "dedup",
    "digest",
    "is_utf8",
    "limit",
    "size_bounds",
    "skip_empty",
    "utf8_only",
]


@dataclass
class FilterStats:
    """Counts of samples produced by the source and dropped by each filter.

    `too_large` also counts samples a source skipped before reading them in full (a file
    whose size on disk, or a blob whose listed length, is already above `max_bytes`), and
    `unreadable` the records a source skipped with a warning (invalid JSON, a field that is not
    text, an unreadable file or blob, an undecodable encoding); both are in `seen` too.
    """

    seen: int = 0
    unreadable: int = 0
    empty: int = 0
    too_small: int = 0
    too_large: int = 0
    not_utf8: int = 0
    duplicate: int = 0
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def digest(data: bytes) -> bytes:
    """Blake2b-256 of the sample (the same hash the protocol uses for checksums)."""
    return hashlib.blake2b(data, digest_size=32).digest()


def is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def skip_empty(samples: Iterable[bytes], stats: FilterStats | None = None) -> Iterator[bytes]:
    """Drop zero-length samples (the scorer cannot score them: no chunks, no batches)."""
    for data in samples:
        if stats is not None:
            stats.seen += 1
        if not data:
            if stats is not None:
                stats.empty += 1
            continue
        yield data


def size_bounds(
    samples: Iterable[bytes], min_bytes: int, max_bytes: int, stats: FilterStats | None = None
) -> Iterator[bytes]:
    """Keep samples with `min_bytes <= len(sample) <= max_bytes`."""
    for data in samples:
        size = len(data)
        if size < min_bytes:
            if stats is not None:
                stats.too_small += 1
            continue
        if size > max_bytes:
            if stats is not None:
                stats.too_large += 1
            continue
        yield data


def utf8_only(samples: Iterable[bytes], stats: FilterStats | None = None) -> Iterator[bytes]:
    """Keep samples that are valid UTF-8."""
    for data in samples:
        if not is_utf8(data):
            if stats is not None:
                stats.not_utf8 += 1
            continue
        yield data


def dedup(samples: Iterable[bytes], stats: FilterStats | None = None) -> Iterator[bytes]:
    """Drop samples whose exact bytes were already yielded by this stream.

    Keeps one 32-byte Blake2b-256 digest per distinct sample in a set: about 100 bytes of
    memory each in CPython (a 65-byte bytes object plus its set slot), so 10 million
    distinct samples cost about 1 GB. The memory lives as long as the stream.
    """
    seen: set[bytes] = set()
    for data in samples:
        key = digest(data)
        if key in seen:
            if stats is not None:
                stats.duplicate += 1
            continue
        seen.add(key)
        yield data


def limit(samples: Iterable[bytes], count: int | None, stats: FilterStats | None = None) -> Iterator[bytes]:
    """At most `count` samples (all when None); never pulls one more from upstream than it yields."""
    if count is not None and count <= 0:
        return
    for produced, data in enumerate(samples, start=1):
        if stats is not None:
            stats.kept += 1
        yield data
        if count is not None and produced >= count:
            return


def apply_filters(
    samples: Iterable[bytes],
    *,
    min_bytes: int = 1,
    max_bytes: int | None = None,
    utf8: bool = False,
    unique: bool = True,
    count: int | None = None,
    stats: FilterStats | None = None,
) -> Iterator[bytes]:
    """The standard chain: empty, size bounds, UTF-8 (when `utf8`), dedup (when `unique`), limit."""
    stream: Iterator[bytes] = skip_empty(samples, stats)
    if min_bytes > 1 or max_bytes is not None:
        stream = size_bounds(stream, min_bytes, max_bytes if max_bytes is not None else 2**63, stats)
    if utf8:
        stream = utf8_only(stream, stats)
    if unique:
        stream = dedup(stream, stats)
    return limit(stream, count, stats)
