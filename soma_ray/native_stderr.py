"""Lines Ray's C++ core writes straight to this process's stderr (file descriptor 2).

Python logging never sees them. An example is core_worker.cc's "constructor arguments in the
object store" error, which Ray Data's actor pools trigger on every start. Unless verbose, a pipe
on fd 2 moves them to the Ray log file and passes every other byte through unchanged.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

# Ray's native log prefix: "[2026-11-28 14:18:53,425 E 5338 5338] core_worker.cc:2465: ..."
NATIVE_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [DIWEF] \d+ \d+\] ")
log = logging.getLogger("ray.native")  # routed with the other "ray" loggers (runtime.quiet_console)


def split_native(buffer: bytes) -> tuple[list[bytes], bytes, bytes]:
    """(native lines, bytes to pass through, bytes kept until more arrive) of what the pipe holds.

    A partial line is kept only while it may still become a native line (it starts with "["), so
    a prompt or a progress bar without a newline is never held back."""
    native: list[bytes] = []
    passed = bytearray()
    *lines, rest = buffer.split(b"\n")
    for line in lines:
        if NATIVE_LINE.match(line):
            native.append(line)
        else:
            passed += line + b"\n"
    if rest and not rest.startswith(b"["):
        passed += rest
        rest = b""
    return native, bytes(passed), rest


class NativeStderrFilter:
    """Owns fd 2 while running: a pump thread reads the pipe, logs native lines, writes the rest to
    the real stderr. `stop` (also at exit) puts the real stderr back and drains the pipe."""

    def __init__(self) -> None:
        self._real = -1
        self._pipe_inode: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sys.stderr.flush()
        self._real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._pipe_inode = os.fstat(2).st_ino
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="native-stderr", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _pump(self, read_end: int) -> None:
        pending = b""
        while chunk := os.read(read_end, 65536):
            native, passed, pending = split_native(pending + chunk)
            for line in native:
                log.warning("%s", line.decode("utf-8", "replace"))
            if passed:
                os.write(self._real, passed)
        if pending:
            os.write(self._real, pending)
        os.close(read_end)

    def stop(self) -> None:
        """Back to the real stderr, unless someone else has taken fd 2 since (an error path that
        silenced it on purpose keeps it silenced)."""
        if self._thread is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        if os.fstat(2).st_ino == self._pipe_inode:
            os.dup2(self._real, 2)  # closes the pipe's last write end: the pump reads EOF
        self._thread.join(timeout=2.0)  # (fd 2 replaced since: the pipe's write end closed with it)
        self._thread = None


_FILTER: NativeStderrFilter | None = None


def filter_native_stderr() -> None:
    """Start the filter once per process, and only where fd 2 is the process's own stderr (not
    under a caller that captures `sys.stderr`, such as a test runner)."""
    global _FILTER
    if _FILTER is not None or sys.__stderr__ is None or sys.stderr is not sys.__stderr__:
        return
    _FILTER = NativeStderrFilter()
    _FILTER.start()
