"""What a display shows at one moment: a checklist of steps, the stage, the latest figures."""

from __future__ import annotations

from dataclasses import dataclass, field

from soma_ray.display.figures import Figures


@dataclass
class Step:
    title: str
    result: str | None = None  # the step's one-line outcome, once done


@dataclass
class DisplayState:
    steps: list[Step] = field(default_factory=list)
    stage: str | None = None
    figures: Figures | None = None

    def step_line(self, index: int) -> str:
        """`== step 3/7 <result>` once done (the line the plain renderer prints)."""
        step = self.steps[index]
        return f"== step {index + 1}/{len(self.steps)} {step.result or step.title}"

    @property
    def running(self) -> int | None:
        """The first step not done yet."""
        return next((i for i, s in enumerate(self.steps) if s.result is None), None)
