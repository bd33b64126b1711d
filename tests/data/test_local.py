"""Local sources yield exactly the expected bytes: files (a repository tree), text, JSONL."""

from __future__ import annotations

import gzip
import logging
import os
import pickle
from pathlib import Path

import pytest

from soma_ray.data import (
    DataConfig,
    DataError,
    FilterStats,
    JsonlSource,
    LocalFilesSource,
    TextSource,
    build_source,
    find_files,
    make_source,
)
from soma_ray.data.local import glob_regex
from tests.data.kit import non_utf8, random_bytes, write_jsonl


def make_tree(root: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small source repository with binary files, a .git directory, symlinks and a FIFO."""
    root = tmp_path / "repo"
    make_tree(
        root,
        {
            "README.md": b"# demo\n",
            "src/pkg/__init__.py": b"",
            "src/pkg/core.py": b"def f():\n    return 1\n",
            "src/pkg/blob.bin": non_utf8(1, 300),
            "src/zeta.py": b"Z = 26\n",
            "docs/a.txt": random_bytes(2, 1000),
            ".git/config": b"[core]\n",
            ".git/objects/ab/cdef": b"packed",
            ".github/ci.yml": b"on: push\n",
        },
    )
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside the repo")
    (root / "leak.txt").symlink_to(outside)
    (root / "docs/link-to-readme.md").symlink_to(root / "README.md")
    (root / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(root / "pipe")
    return root


def test_files_source_walks_a_repository(repo: Path) -> None:
    names = [p.relative_to(repo).as_posix() for p in find_files([repo])]
    # Sorted; no .git, no symlink pointing outside, no symlinked directory, no FIFO; the
    # symlink to README.md inside the repo is the same file, listed once.
    assert names == [
        ".github/ci.yml",
        "README.md",
        "docs/a.txt",
        "src/pkg/__init__.py",
        "src/pkg/blob.bin",
        "src/pkg/core.py",
        "src/zeta.py",
    ]
    expected = [(repo / n).read_bytes() for n in names]
    assert list(LocalFilesSource([repo])) == expected
    assert list(LocalFilesSource([repo])) == expected  # iterating again starts over


def test_files_source_globs_narrow_directories(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = LocalFilesSource([repo], ["**/*.py"])
    assert [p.relative_to(repo).as_posix() for p in source.files] == [
        "src/pkg/__init__.py",
        "src/pkg/core.py",
        "src/zeta.py",
    ]
    assert list(source) == [b"", b"def f():\n    return 1\n", b"Z = 26\n"]
    assert [p.name for p in find_files([repo], ["src/*.py", "*.md"])] == ["README.md", "zeta.py"]
    # A file named directly is always read; globs apply to directories.
    assert [p.name for p in find_files([repo / "docs/a.txt", repo / "src"], ["**/core.py"])] == ["a.txt", "core.py"]
    # Without paths, globs are relative to the working directory; absolute ones work too.
    monkeypatch.chdir(repo)
    assert [p.relative_to(repo).as_posix() for p in find_files([], ["src/**/*.py"])] == [
        "src/pkg/__init__.py",
        "src/pkg/core.py",
        "src/zeta.py",
    ]
    assert find_files([], [f"{repo}/docs/*.txt"]) == [repo / "docs/a.txt"]


def test_glob_regex() -> None:
    assert glob_regex("**/*.py").match("a.py") and glob_regex("**/*.py").match("a/b/c.py")
    assert not glob_regex("*.py").match("a/b.py")
    assert glob_regex("src/**").match("src/x/y") and not glob_regex("src/**").match("lib/x")
    assert glob_regex("file?.[ch]").match("file1.c") and not glob_regex("file?.[!ch]").match("file1.c")
    assert glob_regex("a+b(1).txt").match("a+b(1).txt")


def test_missing_and_empty_paths_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope: no such file or directory; check the path"):
        LocalFilesSource([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no files found in .*empty matching \\*\\*/\\*.py; check the paths and globs"):
        make_source(DataConfig(source="files", path=tmp_path / "empty", globs=["**/*.py"]))


def test_unreadable_file_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_tree(tmp_path, {"a": b"first", "b": b"gone", "c": b"third"})
    source = LocalFilesSource([tmp_path])
    (tmp_path / "b").unlink()  # disappears between listing and reading
    with caplog.at_level(logging.WARNING, logger="soma_ray.data"):
        assert list(source) == [b"first", b"third"]
    assert "cannot read (FileNotFoundError" in caplog.text and "skipped" in caplog.text


def test_text_whole_files_are_raw_bytes(tmp_path: Path) -> None:
    blobs = make_tree(
        tmp_path, {"a.txt": non_utf8(5, 4000), "b.txt": random_bytes(6, 123), "c.txt": "héllo\n".encode()}
    )
    assert list(TextSource([tmp_path])) == list(blobs.values())


def test_text_lines(tmp_path: Path) -> None:
    raw = b"alpha\nbeta\r\n\n\xff\xfe\x00 binary\n   \nlast without newline"
    (tmp_path / "t.txt").write_bytes(raw)
    assert list(TextSource([tmp_path / "t.txt"], unit="line")) == [
        b"alpha",
        b"beta",
        b"",
        b"\xff\xfe\x00 binary",
        b"   ",
        b"last without newline",
    ]
    config = DataConfig(source="text", path=tmp_path / "t.txt", text_unit="line")
    assert list(build_source(config)) == [b"alpha", b"beta", b"\xff\xfe\x00 binary", b"   ", b"last without newline"]


def test_text_lines_of_random_bytes(tmp_path: Path) -> None:
    raw = random_bytes(7, 50_000)
    (tmp_path / "r.bin").write_bytes(raw)
    expected = [line.removesuffix(b"\r") for line in raw.split(b"\n")]
    assert list(TextSource([tmp_path / "r.bin"], unit="line")) == expected


def test_text_paragraphs(tmp_path: Path) -> None:
    raw = b"p1 line1\np1 line2\r\n\n \t\n\n\xffp2\nstill p2\n\n\n\np3 at end"
    (tmp_path / "p.txt").write_bytes(raw)
    assert list(TextSource([tmp_path / "p.txt"], unit="paragraph")) == [
        b"p1 line1\np1 line2",
        b"\xffp2\nstill p2",
        b"p3 at end",
    ]


def test_text_over_long_units_are_skipped_while_reading(tmp_path: Path) -> None:
    raw = b"short\n" + b"L" * 5000 + b"\nok line\n\npara\n" + b"M" * 30 + b"\n\nfits\r\n"
    (tmp_path / "big.txt").write_bytes(raw)
    stats = FilterStats()
    assert list(TextSource([tmp_path / "big.txt"], unit="line", max_bytes=20, stats=stats)) == [
        b"short",
        b"ok line",
        b"",
        b"para",
        b"",
        b"fits",
    ]
    assert stats.too_large == 2  # the 5,000-byte line was never held whole
    stats = FilterStats()
    paragraphs = list(TextSource([tmp_path / "big.txt"], unit="paragraph", max_bytes=20, stats=stats))
    assert paragraphs == [b"fits"]
    assert stats.too_large == 2
    # A line of exactly max_bytes (plus CRLF) is kept; one byte more is dropped by the filter.
    (tmp_path / "edge.txt").write_bytes(b"x" * 20 + b"\r\n" + b"y" * 21 + b"\r\n" + b"z" * 40)
    assert list(TextSource([tmp_path / "edge.txt"], unit="line", max_bytes=20)) == [b"x" * 20, b"y" * 21]
    config = DataConfig(source="text", path=tmp_path / "edge.txt", text_unit="line", max_bytes=20)
    assert list(build_source(config)) == [b"x" * 20]


def test_jsonl(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"text": "first", "id": 1}\n'
        "\n"
        '{"text": "ünïcödé ✓", "id": 2}\n'
        "not json at all\n"
        '["a", "list"]\n'
        '{"id": 5}\n'
        '{"text": null}\n'
        '{"text": 42}\n'
        '{"text": "\\ud800 lone surrogate"}\n'
        '{"text": "last", "extra": {"nested": true}}\n'
    )
    with caplog.at_level(logging.WARNING, logger="soma_ray.data"):
        assert list(JsonlSource([path])) == [b"first", "ünïcödé ✓".encode(), b"last"]
    for problem in ("d.jsonl:4: invalid JSON", "d.jsonl:5: a JSON list", "d.jsonl:6: no field 'text'", "is a int"):
        assert problem in caplog.text
    assert "lone surrogate" in caplog.text


def test_jsonl_gzip_and_custom_field(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write('{"content": "zipped"}\n{"content": "two"}\n')
    write_jsonl(tmp_path / "b.jsonl", [{"content": "plain"}])
    config = DataConfig(source="jsonl", path=tmp_path, field="content")
    assert list(build_source(config)) == [b"zipped", b"two", b"plain"]


def test_jsonl_field_missing_from_the_first_record_is_a_config_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"content": "x", "id": 1}])
    with pytest.raises(
        DataError, match=r"d.jsonl:1: no field 'text' in the record \(its keys: content, id\); set `field`"
    ):
        list(JsonlSource([tmp_path / "d.jsonl"]))


def test_sources_pickle(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": b"aa", "b": b"bb"})
    for config in (
        DataConfig(source="files", path=tmp_path),
        DataConfig(source="text", path=tmp_path, text_unit="line"),
        DataConfig(source="huggingface", dataset="json", data_files=[str(tmp_path / "a")]),
        DataConfig(source="stack_v2"),
    ):
        source = make_source(config)
        assert type(pickle.loads(pickle.dumps(source))) is type(source)
