"""Bad data, fuzzed (hypothesis): binary, empty, huge and invalid UTF-8 input for every source kind.

SOMA is byte-level, so binary is data: whatever a source reads is either a sample (bytes, within
the size bounds, UTF-8 when asked) or counted in `FilterStats` under the reason it was dropped,
so `seen` always equals the sum of the drops and `kept` (nothing is lost without a count). A
source that cannot be used at all raises one line of `DataError`; nothing else escapes.

Each test also checks what comes out against an oracle written here, from the documented rules.
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from soma_ray.data import HARD_MAX_BYTES, DataConfig, DataError, FilterStats, build_source, find_files
from soma_ray.data.filters import is_utf8
from soma_ray.data.local import glob_regex
from tests.data.kit import SwhS3, write_jsonl
from tests.kit import FUZZ, fuzz, one_clear_line


def huge(size: int, fill: bytes) -> bytes:
    return (fill * (size // len(fill) + 1))[:size]


# File contents: binary (mostly invalid UTF-8), empty, text, text with long whitespace runs, and
# runs around the size cap (the tests draw `max_bytes` up to 4 KiB; one example uses the real 1 MiB).
CONTENTS = st.one_of(
    st.binary(max_size=600),
    st.just(b""),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from([b"a", b"\xff", b"\n", b"\r\n", b" ", b"\t\n", b"\xe2\x82", b"\x00", b"\n\n"]),
             max_size=60).map(b"".join),
    st.builds(huge, st.integers(0, 9000), st.sampled_from([b"x", b" ", b"\xff", b"ab\n", b"\n", b" \n"])),
)
MAX_BYTES = st.integers(1, 4096)


def counted(stats: FilterStats) -> None:
    """Every sample the source produced is kept or dropped under a reason."""
    drops = stats.unreadable + stats.empty + stats.too_small + stats.too_large + stats.not_utf8 + stats.duplicate
    assert stats.seen == drops + stats.kept, stats


def filtered(samples: Sequence[bytes], max_bytes: int, utf8: bool, unique: bool) -> list[bytes]:
    """The documented filters, written out: drop empty, over `max_bytes`, non-UTF-8, repeats."""
    out: list[bytes] = []
    for data in samples:
        if not data or len(data) > max_bytes or (utf8 and not is_utf8(data)):
            continue
        if unique and data in out:
            continue
        out.append(data)
    return out


def lines_of(content: bytes) -> list[bytes]:
    """Lines as documented: end at b"\\n", a b"\\n" or b"\\r\\n" terminator is not part of the line."""
    pieces = content.split(b"\n")
    lines = [p[:-1] if p.endswith(b"\r") else p for p in pieces[:-1]]
    return lines + ([pieces[-1]] if pieces[-1] else [])


def paragraphs_of(content: bytes) -> list[bytes]:
    """Runs of lines between blank (whitespace-only) lines; inner terminators kept, the last dropped."""
    out: list[bytes] = []
    run: list[bytes] = []
    for line in re.findall(rb"[^\n]*\n|[^\n]+\Z", content):
        if not line.strip():
            if run:
                out.append(b"".join(run))
            run = []
        else:
            run.append(line)
    if run:
        out.append(b"".join(run))
    return [p[:-2] if p.endswith(b"\r\n") else p[:-1] if p.endswith(b"\n") else p for p in out]


def read(config: DataConfig) -> tuple[list[bytes], FilterStats]:
    stats = FilterStats()
    try:
        samples = list(build_source(config, stats))
    except DataError as error:
        one_clear_line(error)
        raise
    counted(stats)
    for data in samples:
        assert isinstance(data, bytes) and config.min_bytes <= len(data) <= config.max_bytes
        assert not config.utf8_only or is_utf8(data)
    assert stats.kept == len(samples)
    return samples, stats


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def write_files(folder: Path, contents: Sequence[bytes], suffix: str = ".txt") -> list[Path]:
    paths = [folder / f"{i:03d}{suffix}" for i in range(len(contents))]
    for path, content in zip(paths, contents, strict=True):
        path.write_bytes(content)
    return paths


@pytest.mark.parametrize("kind", ["files", "file", "line", "paragraph"])
@FUZZ
@given(contents=st.lists(CONTENTS, min_size=1, max_size=4), max_bytes=MAX_BYTES, utf8=st.booleans(), unique=st.booleans())
def test_local_files_and_text_read_anything(kind: str, contents: list[bytes], max_bytes: int, utf8: bool, unique: bool) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        write_files(folder, contents)
        unit = {} if kind == "files" else {"text_unit": kind}
        config = DataConfig(source="files" if kind == "files" else "text", path=folder, max_bytes=max_bytes,
                            utf8_only=utf8, dedup=unique, **unit)
        samples, stats = read(config)
    split = {"files": lambda c: [c], "file": lambda c: [c], "line": lines_of, "paragraph": paragraphs_of}[kind]
    produced = [unit for content in contents for unit in split(content)]
    assert samples == filtered(produced, max_bytes, utf8, unique)
    assert stats.seen == len(produced) and stats.unreadable == 0


@pytest.mark.parametrize("kind", ["files", "file", "line", "paragraph"])
def test_samples_over_the_on_chain_cap_are_counted(folder: Path, kind: str) -> None:
    at_cap, over = huge(HARD_MAX_BYTES, b"y"), huge(HARD_MAX_BYTES + 1, b"\xff")
    write_files(folder, [at_cap, over, b"", b"small"])
    unit = {} if kind == "files" else {"text_unit": kind}
    config = DataConfig(source="files" if kind == "files" else "text", path=folder, max_bytes=HARD_MAX_BYTES, **unit)
    samples, stats = read(config)
    assert samples == [at_cap, b"small"]
    assert (stats.too_large, stats.empty) == (1, 0 if kind in ("line", "paragraph") else 1)


# JSON Lines: each line is drawn with what the source must make of it.
def _record(text: str) -> tuple[bytes, str, bytes | None]:
    return json.dumps({"text": text, "n": 1}).encode(), "sample", text.encode("utf-8", "surrogatepass")


def _not_json(raw: bytes) -> bool:
    return bool(raw.strip()) and not raw.lstrip().startswith((b"{", b"\xef\xbb\xbf")) and b"\n" not in raw


JSONL_LINE = st.one_of(
    st.text(max_size=200).map(_record),  # lone surrogates: "\ud800" is valid JSON, not valid UTF-8
    st.builds(lambda n: (json.dumps({"text": "é" * n}).encode(), "sample", ("é" * n).encode()), st.integers(1000, 3000)),
    st.just((b'{"text": null}', "null", None)),
    st.sampled_from([b'{"text": 5}', b'{"text": ["a"]}', b'{"text": {"x": 1}}']).map(lambda raw: (raw, "not text", None)),
    st.sampled_from([b"[1, 2]", b'"str"', b"3", b"null", b'{"text": "a\xff"}', b"{", b"\xff\xfe{}", b"\x00"])
    .map(lambda raw: (raw, "bad", None)),
    st.integers(1000, 30000).map(lambda n: (b"[" * n, "bad", None)),  # nesting beyond the recursion limit
    st.binary(min_size=1, max_size=300).filter(_not_json).map(lambda raw: (raw, "bad", None)),
    st.sampled_from([b"", b"  ", b"\t", b"\r"]).map(lambda raw: (raw, "blank", None)),
    st.just((b'{"other": "x"}', "missing", None)),
)


def jsonl_oracle(lines: Sequence[tuple[bytes, str, bytes | None]]) -> tuple[list[bytes], int, bool]:
    """(samples, records skipped with a warning, whether it must fail with DataError)."""
    samples, skipped, checked = [], 0, False
    for _raw, kind, value in lines:
        if kind == "sample":
            checked = True
            if value is not None and is_utf8(value):
                samples.append(value)
            else:
                skipped += 1
        elif kind == "null":
            checked = True
        elif kind == "not text":
            checked = True
            skipped += 1
        elif kind == "bad":
            skipped += 1
        elif kind == "missing":
            if not checked:
                return samples, skipped, True
            skipped += 1
    return samples, skipped, False


@FUZZ
@given(lines=st.lists(JSONL_LINE, max_size=12), max_bytes=MAX_BYTES, gz=st.booleans(), crlf=st.booleans())
def test_jsonl_reads_any_line(lines: list[tuple[bytes, str, bytes | None]], max_bytes: int, gz: bool, crlf: bool) -> None:
    content = (b"\r\n" if crlf else b"\n").join(raw for raw, _, _ in lines)
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / ("a.jsonl.gz" if gz else "a.jsonl")
        path.write_bytes(gzip.compress(content) if gz else content)
        config = DataConfig(source="jsonl", path=path, max_bytes=max_bytes, dedup=False)
        expected, skipped, fails = jsonl_oracle(lines)
        if fails:
            with pytest.raises(DataError, match=r"no field 'text' in the record \(its keys: other\)") as caught:
                read(config)
            one_clear_line(caught.value)
            return
        samples, stats = read(config)
    assert samples == filtered(expected, max_bytes, utf8=False, unique=False)
    assert stats.unreadable == skipped


@FUZZ
@given(records=st.lists(st.text(max_size=50), min_size=1, max_size=30), cut=st.integers(0, 10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=5), tail=st.binary(max_size=40))
@example(records=["hello"] * 200, cut=10_000, flips=[(40, 0x55), (41, 0x55), (42, 0x55)], tail=b"")  # zlib.error
def test_corrupt_or_truncated_jsonl_gz_is_counted(records: list[str], cut: int, flips: list[tuple[int, int]], tail: bytes) -> None:
    packed = bytearray(gzip.compress("".join(json.dumps({"text": r}) + "\n" for r in records).encode()))
    for at, mask in flips:
        packed[at % len(packed)] ^= mask
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "a.jsonl.gz"
        path.write_bytes(bytes(packed[: max(1, cut)]) + tail)
        try:
            read(DataConfig(source="jsonl", path=path, dedup=False))
        except DataError:  # a corrupted first record that lacks the field: the config looks wrong
            pass


@FUZZ
@given(pattern=st.text(alphabet="[]!^-\\*?/az.{}&~|()", max_size=12))
@example(pattern="[z-a]")
@example(pattern="[!]")
@example(pattern="[^]")
def test_any_glob_is_a_regex_or_one_line(pattern: str) -> None:
    try:
        glob_regex(pattern)
    except DataError as error:
        one_clear_line(error)
    with tempfile.TemporaryDirectory() as name:
        (Path(name) / "a.txt").write_bytes(b"x")
        try:
            find_files([Path(name)], [pattern])
        except DataError as error:
            one_clear_line(error)


@pytest.mark.parametrize(("pattern", "matches"), [
    ("[!]", ["[!]"]), ("[^]", ["^"]), ("[]a]", ["]", "a"]), ("[!]a]", ["^", "b", "\\", "!"]), ("[\\]", ["\\"]), ("[a-c]", ["a", "b"]),
])
def test_glob_sets_match_like_the_shell(pattern: str, matches: list[str]) -> None:
    regex = glob_regex(pattern)
    assert [m for m in ["[!]", "^", "]", "a", "b", "\\", "!"] if regex.match(m)] == matches


def test_a_backwards_range_names_the_glob(folder: Path) -> None:
    with pytest.raises(DataError, match=r"glob '\*\.\[z-a\]': the set '\[z-a\]' is not valid"):
        find_files([folder], ["*.[z-a]"])


@pytest.mark.parametrize("source", ["text", "jsonl", "files"])
@pytest.mark.parametrize("path", ["missing", "", "\x00", "dir/\udcff", "fifo"])
def test_a_bad_local_path_is_one_line(folder: Path, source: str, path: str) -> None:
    import os

    if path == "fifo":
        os.mkfifo(folder / "fifo")
    with pytest.raises(DataError) as caught:
        list(build_source(DataConfig(source=source, path=folder / path if path else folder / "empty")))  # type: ignore[arg-type]
    one_clear_line(caught.value)


# Hugging Face sources over local files: each example loads a dataset (~0.1 s), so fewer of them.
COLUMN_VALUES = st.lists(st.one_of(st.none(), CONTENTS), min_size=1, max_size=6)


@fuzz(0.1)
@given(values=COLUMN_VALUES, max_bytes=MAX_BYTES, utf8=st.booleans())
def test_hugging_face_parquet_binary_column(values: list[bytes | None], max_bytes: int, utf8: bool) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "part-0.parquet"
        pq.write_table(pa.table({"content": pa.array(values, type=pa.binary())}), path)
        config = DataConfig(source="huggingface", dataset="parquet", data_files=str(path), column="content",
                            max_bytes=max_bytes, utf8_only=utf8, dedup=False)
        samples, _ = read(config)
    assert samples == filtered([v for v in values if v is not None], max_bytes, utf8, unique=False)


@fuzz(0.1)
@given(content=CONTENTS, dataset=st.sampled_from(["json", "parquet", "text", "csv"]))
def test_hugging_face_loaders_on_any_file(content: bytes, dataset: str) -> None:
    """Whatever the file holds, the loader reads rows or ends in one `DataError` line."""
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / f"data.{dataset}"
        path.write_bytes(content)
        config = DataConfig(source="huggingface", dataset=dataset, data_files=str(path), dedup=False)
        try:
            read(config)
        except DataError:
            pass


# The Stack v2: rows from a local file, blobs from the session's S3 server (moto).
ENCODINGS = st.sampled_from([None, "UTF-8", "utf-8", "ISO-8859-1", "utf-16", "utf-7", "iso2022_jp", "cp1252", "ascii",
                             "base64", "rot13", "zlib", "bz2", "undefined", "idna", "no-such-codec", "a\x00b", "", 7])
BLOB = st.tuples(CONTENTS, st.sampled_from(["gzip", "plain", "truncated", "missing"]))


# No shrinking: each example uploads blobs and loads a dataset, so a failure is reported as found.
@settings(fuzz(0.1), suppress_health_check=[*FUZZ.suppress_health_check, HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(blobs=st.lists(st.tuples(BLOB, ENCODINGS, st.booleans()), min_size=1, max_size=5),
       max_bytes=MAX_BYTES, salt=st.integers(0, 2**32))
def test_stack_v2_blobs_and_encodings(swh: SwhS3, blobs: list[tuple[tuple[bytes, str], Any, bool]], max_bytes: int,
                                       salt: int) -> None:
    rows = []
    for index, ((content, how), encoding, listed) in enumerate(blobs):
        blob_id = f"fuzz-{salt}-{index}"
        if how == "gzip":
            swh.put_blob(blob_id, content)
        elif how == "plain":
            swh.put_blob(blob_id, content, compress=False)
        elif how == "truncated":
            swh.client.put_object(Bucket="softwareheritage", Key="content/" + blob_id,
                                  Body=gzip.compress(content)[:-9], ACL="public-read")
        row: dict[str, Any] = {"blob_id": blob_id, "src_encoding": encoding}
        if listed:
            row["length_bytes"] = len(content)
        rows.append(row)
    with tempfile.TemporaryDirectory() as name:
        files = [str(write_jsonl(Path(name) / "rows.jsonl", rows))]
        config = DataConfig(source="stack_v2", dataset="json", data_files=files, s3_endpoint_url=swh.endpoint,
                            max_bytes=max_bytes, dedup=False, download_workers=2)
        _, stats = read(config)
    assert stats.seen == len(rows)


def test_stack_v2_odd_encodings_are_skipped_with_a_count(swh: SwhS3) -> None:
    for name in ("enc-b64", "enc-nul", "enc-ok"):
        swh.put_blob(name, b"aGVsbG8=")
    rows = [{"blob_id": "enc-b64", "src_encoding": "base64"}, {"blob_id": "enc-nul", "src_encoding": "a\x00b"},
            {"blob_id": "enc-ok", "src_encoding": "ascii"}]
    with tempfile.TemporaryDirectory() as name:
        files = [str(write_jsonl(Path(name) / "rows.jsonl", rows))]
        config = DataConfig(source="stack_v2", dataset="json", data_files=files, s3_endpoint_url=swh.endpoint)
        samples, stats = read(config)
    assert samples == [b"aGVsbG8="]
    assert astuple(stats)[:2] == (3, 2)  # seen, unreadable
