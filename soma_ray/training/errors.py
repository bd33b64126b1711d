"""Training failures a user can fix, reported as one line."""

from soma_ray.errors import SomaRayError


class WarmStartError(SomaRayError):
    """Warm-start weights could not be had or do not fit the configured architecture."""


class ExportError(SomaRayError):
    """A checkpoint cannot be exported (missing, not a soma-ray checkpoint, wrong shape)."""


class SweepFailed(SomaRayError):
    """Every trial of a sweep failed."""
