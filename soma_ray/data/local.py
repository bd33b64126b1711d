"""Local sources: whole files (a source repository), text files by file/line/paragraph, JSONL.

Files are found by `find_files`: each directory is walked (sorted, `.git` skipped, symlinked
directories not entered, symlinked files read only when they point inside the directory),
optionally narrowed by globs. Bytes are read in binary and never decoded.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Literal

from soma_ray.data.errors import DataError, SkipLog, first_line, logger
from soma_ray.data.filters import FilterStats

__all__ = ["JsonlSource", "LocalFilesSource", "TextSource", "find_files", "glob_regex"]

TextUnit = Literal["file", "line", "paragraph"]

# Version-control metadata is never data (`.git` may also be a file in worktrees/submodules).
SKIPPED_NAMES = frozenset({".git", ".hg", ".svn"})
_MAGIC = re.compile(r"[*?\[]")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths: `*`, `?`, `[...]` stay within one path
    segment, a `**` segment matches any number of segments (including none). Dotfiles match."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    out: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        i, piece = 0, ""
        while i < len(part):
            char = part[i]
            if char == "*":
                piece += "[^/]*"
            elif char == "?":
                piece += "[^/]"
            elif char == "[":
                start = i + 1
                if part[start : start + 1] == "!":
                    start += 1
                if part[start : start + 1] == "]":  # a leading ']' is a member, not the end
                    start += 1
                end = part.find("]", start)
                if end == -1:
                    piece += re.escape(char)
                else:
                    piece += _char_class(part[i + 1 : end], pattern)
                    i = end
            else:
                piece += re.escape(char)
            i += 1
        out.append(piece + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _char_class(body: str, pattern: str) -> str:
    """A glob's `[...]` (its inside is `body`) as a regex class: `!` negates, `^` and `\\` are
    members, and a range the wrong way round (`z-a`) is a `DataError` naming the glob."""
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    members = re.sub(r"([\\^\[&~|])", r"\\\1", body)
    regex = "[" + ("^" if negate else "") + members + "]"
    try:
        re.compile(regex)
    except re.error:
        raise DataError(
            f"glob {pattern!r}: the set {'[' + body + ']'!r} is not valid (a range running backwards, such as z-a?); "
            "fix or remove it"
        ) from None
    return regex


def _split_glob(pattern: str) -> tuple[str, str]:
    """(`literal/leading/dirs`, `rest`): walking starts at the literal part."""
    parts = pattern.split("/")
    for index, part in enumerate(parts[:-1]):
        if _MAGIC.search(part) or part == "**":
            return "/".join(parts[:index]), "/".join(parts[index:])
    return "/".join(parts[:-1]), parts[-1]


def _regular_file(path: Path, inside: Path) -> bool:
    """A regular file (not a FIFO or device); a symlink only if it resolves inside `inside`."""
    try:
        if path.is_symlink():
            target = path.resolve(strict=True)
            if not target.is_relative_to(inside):
                logger.debug("%s: symlink points outside %s; skipped", path, inside)
                return False
            return stat.S_ISREG(target.stat().st_mode)
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _walk(base: Path, inside: Path) -> Iterator[Path]:
    """Every regular file under `base` (no `.git`, no symlinked directories)."""

    def unreadable(exc: OSError) -> None:
        logger.warning("%s: cannot list (%s); skipped", exc.filename, first_line(exc))

    for dirpath, dirnames, filenames in os.walk(base, onerror=unreadable, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_NAMES]
        for name in filenames:
            if name in SKIPPED_NAMES:
                continue
            path = Path(dirpath, name)
            if _regular_file(path, inside):
                yield path


def _glob_under(root: Path, pattern: str) -> Iterator[Path]:
    literal, rest = _split_glob(pattern)
    base = root / literal if literal else root
    if not base.is_dir():
        return
    inside = root.resolve()
    if not base.resolve().is_relative_to(inside):  # an absolute pattern, or one with '..'
        inside = base.resolve()
    regex = glob_regex(rest)
    for path in _walk(base, inside):
        if regex.match(path.relative_to(base).as_posix()):
            yield path


def find_files(paths: Sequence[Path], globs: Sequence[str] = ()) -> list[Path]:
    """The files named by `paths` and `globs`, in a deterministic order.

    A file in `paths` is taken as is. A directory is walked in full, or, when `globs` are
    given, only the files matching one of them (relative to that directory). Without
    `paths`, globs are relative to the working directory. Each directory's files are sorted
    by relative path; a file reached twice is listed once. Raises `DataError` if a path does
    not exist or nothing is found.
    """
    found: list[Path] = []
    known: set[Path] = set()

    def add(batch: Iterable[Path], root: Path) -> None:
        for path in sorted(batch, key=lambda p: p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p)):
            real = path.resolve()
            if real not in known:
                known.add(real)
                found.append(path)

    for raw in paths:
        path = raw.expanduser()
        if path.is_dir():
            if globs:
                add((p for pattern in globs for p in _glob_under(path, pattern)), path)
            else:
                add(_walk(path, path.resolve()), path)
        elif path.is_file():
            add([path], path.parent)
        elif path.exists():
            raise DataError(f"{path}: not a regular file or directory; give files or directories")
        else:
            raise DataError(f"{path}: no such file or directory; check the path (relative to {Path.cwd()})")
    if not paths:
        cwd = Path.cwd()
        for pattern in globs:
            pattern = os.path.expanduser(pattern)
            if os.path.isabs(pattern):  # '/data/**/*.txt': walk /data, symlinks must stay inside it
                literal, rest = _split_glob(pattern)
                base = Path(literal or os.sep)
                add(_glob_under(base, rest), base)
            else:
                add(_glob_under(cwd, pattern), cwd)
    if not found:
        where = ", ".join(str(p) for p in paths) or str(Path.cwd())
        matching = f" matching {', '.join(globs)}" if globs else ""
        raise DataError(f"no files found in {where}{matching}; check the paths and globs")
    return found


def _read_file(path: Path, max_bytes: int | None, stats: FilterStats | None, skips: SkipLog) -> bytes | None:
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            if stats is not None:
                stats.seen += 1
                stats.too_large += 1
            return None
        return path.read_bytes()
    except OSError as exc:
        skips.skip(f"{path}: cannot read ({first_line(exc)})")
        return None


class LocalFilesSource:
    """Each file's raw bytes is one sample (e.g. every file of a source repository).

    With `max_bytes`, files larger than that on disk are skipped without being read.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        globs: Sequence[str] = (),
        *,
        max_bytes: int | None = None,
        stats: FilterStats | None = None,
    ) -> None:
        self.files = find_files(paths, globs)
        self.max_bytes = max_bytes
        self.stats = stats

    def __iter__(self) -> Iterator[bytes]:
        skips = SkipLog("files", stats=self.stats)
        for path in self.files:
            data = _read_file(path, self.max_bytes, self.stats, skips)
            if data is not None:
                yield data


def _strip_newline(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


class _Overlong:
    """A line longer than the cap, not held: whether it was blank (whitespace only) is all that is kept."""

    def __init__(self, blank: bool) -> None:
        self.blank = blank


def _lines(handle: IO[bytes], max_line: int | None) -> Iterator[bytes | _Overlong]:
    """Lines with their terminator; an `_Overlong` for a line longer than `max_line` (never held whole)."""
    if max_line is None:
        yield from handle
        return
    while True:
        line = handle.readline(max_line + 1)
        if not line:
            return
        if len(line) > max_line and not line.endswith(b"\n"):
            blank = not line.strip()
            while True:  # discard the rest of the over-long line
                rest = handle.readline(1 << 20)
                blank = blank and not rest.strip()
                if not rest or rest.endswith(b"\n"):
                    break
            yield _Overlong(blank)
            continue
        yield line


class TextSource:
    """Text files as raw bytes: each whole file, each line, or each paragraph is a sample.

    - `line`: lines end at b"\\n"; the terminator (b"\\n" or b"\\r\\n") is not part of the sample.
    - `paragraph`: runs of lines separated by blank (empty or whitespace-only) lines; the
      lines keep their inner terminators, the last line's terminator is dropped.

    With `max_bytes`, over-long files, lines and paragraphs are skipped while reading, so a
    huge file without newlines never has to fit in memory.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        globs: Sequence[str] = (),
        *,
        unit: TextUnit = "file",
        max_bytes: int | None = None,
        stats: FilterStats | None = None,
    ) -> None:
        if unit not in ("file", "line", "paragraph"):
            raise DataError(f"text unit {unit!r} is not one of file, line, paragraph")
        self.files = find_files(paths, globs)
        self.unit = unit
        self.max_bytes = max_bytes
        self.stats = stats

    def _too_large(self) -> None:
        if self.stats is not None:
            self.stats.seen += 1
            self.stats.too_large += 1

    def __iter__(self) -> Iterator[bytes]:
        skips = SkipLog("text", stats=self.stats)
        for path in self.files:
            if self.unit == "file":
                data = _read_file(path, self.max_bytes, self.stats, skips)
                if data is not None:
                    yield data
                continue
            try:
                with path.open("rb") as handle:
                    if self.unit == "line":
                        yield from self._split_lines(handle)
                    else:
                        yield from self._split_paragraphs(handle)
            except OSError as exc:
                skips.skip(f"{path}: cannot read ({first_line(exc)})")

    def _split_lines(self, handle: IO[bytes]) -> Iterator[bytes]:
        # A sample of max_bytes plus a two-byte terminator still fits in max_bytes + 2.
        for line in _lines(handle, None if self.max_bytes is None else self.max_bytes + 2):
            if isinstance(line, _Overlong):
                self._too_large()
            else:
                yield _strip_newline(line)

    def _split_paragraphs(self, handle: IO[bytes]) -> Iterator[bytes]:
        cap = None if self.max_bytes is None else self.max_bytes + 2
        parts: list[bytes] = []
        size = 0
        oversize = False
        for line in _lines(handle, cap):
            if line.blank if isinstance(line, _Overlong) else not line.strip():
                if oversize:
                    self._too_large()
                elif parts:
                    yield _strip_newline(b"".join(parts))
                parts, size, oversize = [], 0, False
                continue
            if oversize:
                continue
            if isinstance(line, _Overlong) or (cap is not None and size + len(line) > cap):
                parts, size, oversize = [], 0, True
                continue
            parts.append(line)
            size += len(line)
        if oversize:
            self._too_large()
        elif parts:
            yield _strip_newline(b"".join(parts))


def _open_jsonl(path: Path) -> io.BufferedIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


class JsonlSource:
    """JSON Lines: the string `field` of each record, UTF-8 encoded, is one sample.

    Blank lines are ignored. A line that is not a JSON object, or whose field is not a
    string, is skipped with a warning (a null field is skipped quietly). If the first record
    lacks the field altogether, the config is wrong: `DataError` names the keys it has.
    `.gz` files are decompressed on the fly.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        globs: Sequence[str] = (),
        *,
        field: str = "text",
        stats: FilterStats | None = None,
    ) -> None:
        self.files = find_files(paths, globs)
        self.field = field
        self.stats = stats

    def __iter__(self) -> Iterator[bytes]:
        skips = SkipLog("jsonl", stats=self.stats)
        checked = False
        for path in self.files:
            try:
                with _open_jsonl(path) as handle:
                    for number, line in enumerate(handle, start=1):
                        if not line.strip():
                            continue
                        where = f"{path}:{number}"
                        try:
                            record = json.loads(line)
                        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, deep nesting
                            skips.skip(f"{where}: invalid JSON ({first_line(exc, 120)})")
                            continue
                        if not isinstance(record, dict):
                            skips.skip(f"{where}: a JSON {type(record).__name__}, not an object")
                            continue
                        if self.field not in record:
                            if not checked:
                                keys = ", ".join(sorted(record)[:20]) or "none"
                                raise DataError(
                                    f"{where}: no field {self.field!r} in the record (its keys: {keys}); "
                                    "set `field` to the one holding the text"
                                )
                            skips.skip(f"{where}: no field {self.field!r}")
                            continue
                        checked = True
                        value = record[self.field]
                        if value is None:
                            continue
                        if not isinstance(value, str):
                            skips.skip(f"{where}: field {self.field!r} is a {type(value).__name__}, not a string")
                            continue
                        try:
                            data = value.encode("utf-8")
                        except UnicodeEncodeError:
                            skips.skip(f"{where}: field {self.field!r} holds a lone surrogate, not encodable as UTF-8")
                            continue
                        yield data
            except (OSError, EOFError, zlib.error) as exc:  # unreadable file, corrupt or truncated gzip
                skips.skip(f"{path}: cannot read ({first_line(exc)})")
