"""When two scoring results count as the same: the validators' audit tolerance (protocol.md §1.8).

burn's `Tolerance::permissive()`: x == y, or |x − y| < max(0.01, 0.01·max(|x|, |y|)), per element.
The audit applies it to the winning distance and loss score; the embedding is not audited.
"""

from __future__ import annotations

ABSOLUTE = 0.01
RELATIVE = 0.01


def within_audit_tolerance(x: float, y: float) -> bool:
    """True if a validator re-scoring would accept `y` for a claimed `x` (NaN never matches)."""
    return x == y or abs(x - y) < max(ABSOLUTE, RELATIVE * max(abs(x), abs(y)))
