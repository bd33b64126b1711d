"""What a checkpoint carries besides DeepSpeed's own files: where the run stood."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "soma_ray_state.json"
DEEPSPEED_TAG = "deepspeed"  # DeepSpeed's checkpoint tag (a sub-folder of the checkpoint)


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    tokens: int = 0  # tokens trained on, all ranks (1024 per sequence, PAD included)
    heldout_loss: float = math.nan  # the latest exact-scorer held-out loss
    best_heldout_loss: float = math.inf
    run: str = ""

    def write(self, folder: Path) -> None:
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, folder: Path) -> TrainState:
        path = folder / STATE_FILE
        if not path.exists():
            raise FileNotFoundError(f"{folder} is not a soma-ray training checkpoint (no {STATE_FILE})")
        return cls(**json.loads(path.read_text()))
