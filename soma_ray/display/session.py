"""The display of the running job: one per process at a time; library code finds it with
`current()` and feeds it, entry points open it with `session()`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console

from soma_ray.display.figures import Figures
from soma_ray.display.render import LiveRenderer, PlainRenderer, Renderer
from soma_ray.display.state import DisplayState, Step
from soma_ray.runtime import verbose

PLAIN_INTERVAL_S = 30.0  # a few lines a run under `ray job submit`, not a scrolling log


class Display:
    """A job's progress: `checklist(titles)` then `step_done(i, result)`; `stage(text)`;
    `show(figures)`; `note(text)` for a line that stays. Safe to feed from several threads."""

    def __init__(self, renderer: Renderer | None = None, *, console: Console | None = None,
                 interval_s: float = PLAIN_INTERVAL_S) -> None:
        self.state = DisplayState()
        self.console = console or Console()
        self._lock = threading.Lock()
        if renderer is None:
            # Verbose: Ray's own lines scroll past on the console, so no live region to tear apart.
            if self.console.is_terminal and not verbose():
                renderer = LiveRenderer(self.console, self.state)
            else:
                renderer = PlainRenderer(self._print, interval_s)
        self.renderer = renderer

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def checklist(self, titles: Sequence[str]) -> None:
        with self._lock:
            self.state.steps = [Step(title) for title in titles]
            self.renderer.refresh(self.state)

    def step_done(self, index: int, result: str) -> None:
        with self._lock:
            self.state.steps[index].result = result
            self.state.stage, self.state.figures = None, None  # the next step starts afresh
            self.renderer.step_done(self.state, index)

    def stage(self, text: str) -> None:
        with self._lock:
            self.state.stage = text
            self.renderer.stage(self.state)

    def show(self, figures: Figures) -> None:
        with self._lock:
            self.state.figures = figures
            self.renderer.refresh(self.state)

    def note(self, text: str) -> None:
        with self._lock:
            self.renderer.note(text)

    def close(self) -> None:
        with self._lock:
            self.renderer.close(self.state)


_current: Display | None = None


def current() -> Display | None:
    """The display of the job running in this process, if any."""
    return _current


@contextmanager
def session(console: Console | None = None, *, interval_s: float = PLAIN_INTERVAL_S) -> Iterator[Display]:
    """The running job's display, or a new one for this job (closed at the end, its last view
    left on screen); nested sessions share the outer one."""
    global _current
    if _current is not None:
        yield _current
        return
    display = Display(console=console, interval_s=interval_s)
    _current = display
    try:
        yield display
    finally:
        _current = None
        display.close()
