"""`soma-ray doctor`: check a set-up for a recipe and say what to fix, one line each.

One small module per group of checks, each returning `Check`s (name, ok/info/warn/fail, one line
with the fix); `run.diagnose` picks the groups a recipe needs (`needs.needs_of`) and the CLI only
renders them. No check prints a secret, and `Report.scrubbed` masks any that slipped through.
"""

from soma_ray.doctor.result import Check, Level
from soma_ray.doctor.run import GROUPS, Report, diagnose, summary

__all__ = ["GROUPS", "Check", "Level", "Report", "diagnose", "summary"]
