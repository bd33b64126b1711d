"""The one rule for making local paths absolute.

Processes that run elsewhere (the driver actor, Ray Train workers, a job's copy of the working
directory) start in another folder, so every local path a recipe names is made absolute against
where the user ran the command before it leaves that process. URIs pass through.
"""

from __future__ import annotations

from pathlib import Path


def absolute(path: Path, base: Path) -> Path:
    """`path` with `~` expanded, against `base` unless it is absolute already."""
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def absolute_location(location: str, base: Path) -> str:
    """A local folder made absolute; a URI (s3://, gs://, file://, http(s)://) unchanged."""
    return location if "://" in location else str(absolute(Path(location), base))
