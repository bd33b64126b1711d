"""Training failures a user can fix, reported as one line."""


class WarmStartError(Exception):
    """Warm-start weights could not be had or do not fit the configured architecture."""


class ExportError(Exception):
    """A checkpoint cannot be exported (missing, not a soma-ray checkpoint, wrong shape)."""


class SweepFailed(Exception):
    """Every trial of a sweep failed."""
