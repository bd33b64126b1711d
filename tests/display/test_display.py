"""The progress display without Ray: the rich Live view on a (forced) terminal, the plain lines
on a pipe at their interval (a fake clock), the figures' lines, the ETA, nested sessions."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from soma_ray.display import Display, ScoringFigures, TrainingFigures, current, format_duration, session
from soma_ray.display.figures import Eta
from soma_ray.display.render import LiveRenderer, PlainRenderer

TRAINING = TrainingFigures(step=12, total=30, loss=5.4321, heldout_loss=5.5, tokens_per_s=12345.6, mfu=0.0123,
                           eta_s=75)
SCORING = ScoringFigures(samples=40, samples_per_s=2.5, scored_tokens_per_s=51200, hits=9, fills=2,
                         best_distance=0.41234, eta_s=None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_figures_lines_carry_what_the_issue_lists() -> None:
    assert TRAINING.line() == ("training: step 12/30 | loss 5.4321 | held-out 5.5000 | 12,346 tokens/s | "
                               "MFU 1.2% | ETA 1m15s")
    assert SCORING.line() == ("scoring: 40 samples (2.5/s) | 51,200 scored tokens/s | 9 hits | 2 fills | "
                              "best distance 0.4123")  # unbounded source: no ETA
    bounded = ScoringFigures(0, 0.0, 0.0, 0, 0, None, eta_s=3725)
    assert bounded.line().endswith("best distance - | ETA 1h02m")
    no_eval = TrainingFigures(1, 30, 6.0, None, 10.0, None, None)
    assert no_eval.line() == "training: step 1/30 | loss 6.0000 | 10 tokens/s"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (42.4, "42s"), (185, "3m05s"), (3600, "1h00m")])
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_eta_from_the_average_rate_since_the_first_reading() -> None:
    eta = Eta(total=100)
    assert eta.read(10, now=0.0) is None  # one reading: no rate yet
    assert eta.read(10, now=5.0) is None  # no progress: no rate
    assert eta.read(30, now=10.0) == pytest.approx(35.0)  # 20 steps in 10 s, 70 left
    assert Eta(total=None).read(5, now=1.0) is None


def test_plain_lines_at_most_once_per_interval() -> None:
    lines: list[str] = []
    clock = Clock()
    display = Display(PlainRenderer(lines.append, interval_s=30, clock=clock))
    display.checklist(["fund", "train"])
    assert lines == []  # the checklist itself is not printed on a pipe
    display.show(TRAINING)
    assert lines == []  # not before the first interval
    clock.now += 30
    display.show(TRAINING)
    assert lines == [TRAINING.line()]
    clock.now += 10
    display.show(SCORING)
    assert lines == [TRAINING.line()]  # 10 s later: not yet
    clock.now += 20
    display.show(SCORING)
    display.show(SCORING)
    assert lines == [TRAINING.line(), SCORING.line()]  # once, not again for the same figures
    display.step_done(0, "wallet funded")
    display.stage("training run r1")
    display.note("a line that stays")
    assert lines[2:] == ["== step 1/2 wallet funded", "training run r1", "a line that stays"]


def test_a_pipe_gets_plain_lines_a_terminal_gets_the_live_view() -> None:
    pipe = io.StringIO()
    assert isinstance(Display(console=Console(file=pipe)).renderer, PlainRenderer)
    display = Display(console=Console(file=io.StringIO(), force_terminal=True))
    try:
        assert isinstance(display.renderer, LiveRenderer)
    finally:
        display.close()


def test_the_live_view_shows_the_checklist_the_stage_and_the_figures() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    with session(console) as display:
        display.checklist(["fund a wallet", "train", "claim"])
        display.step_done(0, "wallet 0xabc funded")
        display.stage("training run r1")
        display.show(TRAINING)
        display.note("kept above the live view")
    text = out.getvalue()
    final = text[text.rindex("✓ 1/3"):]  # the last drawing, left on screen at the end
    assert "✓ 1/3 wallet 0xabc funded" in final
    assert "… 2/3 train" in final and "· 3/3 claim" in final
    assert "training run r1" in final and TRAINING.line() in final
    assert "kept above the live view" in text


def test_a_finished_step_clears_the_figures_of_the_last_one() -> None:
    lines: list[str] = []
    display = Display(PlainRenderer(lines.append, interval_s=0, clock=Clock()))
    display.checklist(["train", "score"])
    display.stage("training")
    display.show(TRAINING)
    display.step_done(0, "trained")
    assert display.state.figures is None and display.state.stage is None
    assert display.state.running == 1


def test_sessions_nest_and_end() -> None:
    assert current() is None
    with session(Console(file=io.StringIO())) as outer:
        assert current() is outer
        with session() as inner:
            assert inner is outer  # a job inside a job (training inside the cycle) shares the display
        assert current() is outer
    assert current() is None


def test_verbose_scrolls_plain_lines_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Ray's own output on the console (`--verbose`), no live region for it to tear apart."""
    monkeypatch.setenv("SOMA_RAY_VERBOSE", "1")
    assert isinstance(Display(console=Console(file=io.StringIO(), force_terminal=True)).renderer, PlainRenderer)
