"""The one base class of failures a user can fix, and the errors shared by entry points.

Every component's user-facing error (`ConfigError`, `WalletError`, `ChainError`, `StorageError`,
`DataError`, the training errors, ...) derives from `SomaRayError`, so that an entry point
catches one thing and prints it as one line. This module imports nothing: every layer may use it.
"""


class SomaRayError(Exception):
    """A failure the user can fix: one line naming what is wrong and what to do, never a traceback."""


class InputError(SomaRayError):
    """The input itself is wrong (a config, a data source, a key, a URL) rather than the state of the
    world: entry points exit with status 2 for it (1 for any other `SomaRayError`)."""


class WaitTimeout(SomaRayError, TimeoutError):
    """Something we waited for (an epoch, a reveal) did not happen in time."""


class CycleError(SomaRayError):
    """The cycle cannot go on (one line naming what to change)."""
