"""Ray's native log lines on fd 2 go to the log; every other byte of stderr passes through."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from soma_ray.native_stderr import split_native

NATIVE = b"[2026-11-28 14:18:53,425 E 5338 5338] core_worker.cc:2465: Actor with class name: 'A' has constructor"


def test_split_native_keeps_only_what_may_still_become_a_native_line() -> None:
    native, passed, rest = split_native(b"plain\n" + NATIVE + b"\nerror: one line\n[2026-11")
    assert native == [NATIVE]
    assert passed == b"plain\nerror: one line\n"
    assert rest == b"[2026-11"  # waits for the rest of a line that may be native
    assert split_native(b"progress 40%") == ([], b"progress 40%", b"")  # never held back
    assert split_native(b"[not a date] x\n") == ([], b"[not a date] x\n", b"")


def test_a_process_filters_its_own_fd_2() -> None:
    script = textwrap.dedent(f"""
        import logging, os, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="LOG %(name)s %(message)s")
        from soma_ray.native_stderr import filter_native_stderr
        filter_native_stderr()
        os.write(2, b"before\\n" + {NATIVE!r} + b"\\n")  # as Ray's C++ core writes: straight to fd 2
        print("python's stderr", file=sys.stderr)
        os.write(2, b"no newline at the end")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"before\npython's stderr\nno newline at the end"
    assert b"LOG ray.native " + NATIVE in done.stdout
