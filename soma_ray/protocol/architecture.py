"""The V1 model shape a network scores with (protocol.md §1.4, §1.7): its presets and the rule
for which shape applies when none is given.

Every real network runs model_architecture_version 1 at full size (`v1`); localnet's
`--small-model` and the simulated network's default use the small shape. The vocabulary
(`VOCAB_SIZE`), sequence length and SIGReg constants are the same in every shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# localnet's --small-model (§1.7)
SMALL_PRESET: dict[str, int] = {"embedding_dim": 16, "pwff_hidden_dim": 32, "num_layers": 2, "num_heads": 4}
# the full V1 architecture (§1.4): ~4.84 GB of float32 weights per model
V1_PRESET: dict[str, int] = {"embedding_dim": 2048, "pwff_hidden_dim": 8192, "num_layers": 24, "num_heads": 8}
PRESETS: dict[str, dict[str, int]] = {"small": SMALL_PRESET, "v1": V1_PRESET}


class ArchitectureSettings(BaseModel):
    """The V1 model shape the network scores with; target embeddings have its width."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["small", "v1", "custom"] = "small"
    embedding_dim: int = Field(default=SMALL_PRESET["embedding_dim"], gt=0)
    pwff_hidden_dim: int = Field(default=SMALL_PRESET["pwff_hidden_dim"], gt=0)
    num_layers: int = Field(default=SMALL_PRESET["num_layers"], gt=0)
    num_heads: int = Field(default=SMALL_PRESET["num_heads"], gt=0)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, raw: Any) -> Any:
        preset = raw.get("preset", "small") if isinstance(raw, dict) else None
        if isinstance(preset, str) and preset in PRESETS:  # anything else fails validation as one line
            return {**PRESETS[preset], **raw}
        return raw

    def shape(self) -> dict[str, int]:
        """The keyword arguments of soma-models' `ModelConfig` (besides dropout)."""
        return self.model_dump(include={"embedding_dim", "pwff_hidden_dim", "num_layers", "num_heads"})

    def approx_weights_bytes(self) -> int:
        """About the size of one model's float32 weights: the attention (4·d²) and feed-forward
        (2·d·h) matrices of each layer dominate (V1: ~4.83 GB). For sizing disks and caches only;
        the exact bound is `soma_ray.scoring.store.max_weights_bytes`."""
        d, h = self.embedding_dim, self.pwff_hidden_dim
        return 4 * self.num_layers * (4 * d * d + 2 * d * h)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ArchitectureSettings:
        if self.embedding_dim % self.num_heads:
            raise ValueError(
                f"embedding_dim {self.embedding_dim} is not divisible by num_heads {self.num_heads}"
            )
        return self


def v1_architecture() -> ArchitectureSettings:
    """The full-size V1 shape every real network scores with (§1.4)."""
    return ArchitectureSettings(preset="v1")


def default_architecture(
    explicit: ArchitectureSettings | None, *, simulated: ArchitectureSettings | None
) -> ArchitectureSettings:
    """The shape to train or score with: the one given, else the simulated network's own (pass
    `simulated` only when the chain is the simulated network), else V1."""
    if explicit is not None:
        return explicit
    if simulated is not None:
        return simulated
    return v1_architecture()
