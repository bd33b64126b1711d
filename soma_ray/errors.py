"""Errors shared by entry points that must stay cheap to import (no Ray, no torch)."""


class CycleError(Exception):
    """The cycle cannot go on (one line naming what to change)."""
