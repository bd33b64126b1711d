"""The two ways a display is drawn: rich Live on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from soma_ray.display.state import DisplayState


class Renderer(Protocol):
    def note(self, text: str) -> None: ...  # a line that stays (printed now, above anything live)
    def step_done(self, state: DisplayState, index: int) -> None: ...
    def stage(self, state: DisplayState) -> None: ...
    def refresh(self, state: DisplayState) -> None: ...  # new figures
    def close(self, state: DisplayState) -> None: ...


def live_view(state: DisplayState) -> RenderableType:
    """The checklist (done ✓, running …, to do ·), the stage and the latest figures."""
    lines: list[RenderableType] = []
    running = state.running
    for i, step in enumerate(state.steps):
        number = f"{i + 1}/{len(state.steps)}"
        if step.result is not None:
            lines.append(Text.assemble(("✓ ", "green"), (f"{number} ", "bold"), step.result))
        elif i == running:
            lines.append(Text.assemble(("… ", "yellow"), (f"{number} ", "bold"), step.title))
        else:
            lines.append(Text.assemble(("· ", "dim"), (f"{number} {step.title}", "dim")))
    if state.stage is not None and (running is not None or not state.steps):
        lines.append(Text(f"  {state.stage}", style="cyan"))
    if state.figures is not None:
        lines.append(Text(f"  {state.figures.line()}"))
    return Group(*lines)


class LiveRenderer:
    """rich Live on a terminal: the view redrawn in place; it stays on screen when closed."""

    def __init__(self, console: Console, state: DisplayState) -> None:
        self.live = Live(live_view(state), console=console, refresh_per_second=4, transient=False,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def note(self, text: str) -> None:
        self.live.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _draw(self, state: DisplayState) -> None:
        self.live.update(live_view(state), refresh=True)

    def step_done(self, state: DisplayState, index: int) -> None:
        self._draw(state)

    def stage(self, state: DisplayState) -> None:
        self._draw(state)

    def refresh(self, state: DisplayState) -> None:
        self._draw(state)

    def close(self, state: DisplayState) -> None:
        self._draw(state)
        self.live.stop()


class PlainRenderer:
    """Not a terminal (a pipe, a log, `ray job submit`): each finished step and stage on a line of
    its own, and the figures at most once every `interval_s` (the first after `interval_s`)."""

    def __init__(self, write: Callable[[str], None], interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write, self.interval_s, self.clock = write, interval_s, clock
        self.last = clock()
        self.shown: object = None  # the figures last written

    def note(self, text: str) -> None:
        self.write(text)

    def step_done(self, state: DisplayState, index: int) -> None:
        self.write(state.step_line(index))

    def stage(self, state: DisplayState) -> None:
        if state.stage is not None:
            self.write(state.stage)

    def refresh(self, state: DisplayState) -> None:
        now = self.clock()
        if state.figures is not None and state.figures != self.shown and now - self.last >= self.interval_s:
            self.write(state.figures.line())
            self.shown, self.last = state.figures, now

    def close(self, state: DisplayState) -> None:
        pass
