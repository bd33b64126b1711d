"""One progress display per job: a checklist of steps, the current stage and the job's latest
figures, drawn live on a terminal (rich) or as one plain line every N seconds otherwise (a pipe,
`ray job submit`). Jobs feed it typed figures (`figures.py`); `session()` gives the active one."""

from soma_ray.display.figures import Figures, ScoringFigures, TrainingFigures, format_duration
from soma_ray.display.session import Display, current, session

__all__ = ["Display", "Figures", "ScoringFigures", "TrainingFigures", "current", "format_duration", "session"]
