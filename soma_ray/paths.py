"""The one rule for making local paths absolute, and the check of an http(s) URL a recipe names.

Processes that run elsewhere (the driver actor, Ray Train workers, a job's copy of the working
directory) start in another folder, so every local path a recipe names is made absolute against
where the user ran the command before it leaves that process. URIs pass through.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def absolute(path: Path, base: Path) -> Path:
    """`path` with `~` expanded, against `base` unless it is absolute already."""
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def absolute_location(location: str, base: Path) -> str:
    """A local folder made absolute; a URI (s3://, gs://, file://, http(s)://) unchanged."""
    return location if "://" in location else str(absolute(Path(location), base))


def http_url(value: str) -> str:
    """`value` if it is a well-formed http(s) URL with a host; else `ValueError` (one line, for a
    config validator) saying what is wrong with it."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must be an http(s) URL of printable ASCII (no spaces; an IDN host in its xn-- form)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({str(exc).splitlines()[0] if str(exc) else 'malformed'})") from None
    if not parts.hostname:
        raise ValueError("must name a host (http(s)://host[:port]/...)")
    return value
