"""Architecture presets and the default-shape rule (protocol.md §1.4, §1.7)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from soma_ray.protocol.architecture import ArchitectureSettings, default_architecture, v1_architecture
from soma_ray.training.flops import parameter_count


def test_presets() -> None:
    small, v1 = ArchitectureSettings().shape(), v1_architecture().shape()
    assert small == {"embedding_dim": 16, "pwff_hidden_dim": 32, "num_layers": 2, "num_heads": 4}
    assert v1 == {"embedding_dim": 2048, "pwff_hidden_dim": 8192, "num_layers": 24, "num_heads": 8}
    assert v1_architecture().preset == "v1"
    # §2.1: 1,209,684,232 parameters at full size
    assert parameter_count(**{k: v for k, v in v1_architecture().shape().items() if k != "num_heads"}) == 1_209_684_232


def test_preset_values_can_be_overridden_and_custom_keeps_what_is_given() -> None:
    assert ArchitectureSettings(preset="v1", num_layers=2).num_layers == 2
    custom = ArchitectureSettings(preset="custom", embedding_dim=32, pwff_hidden_dim=64, num_layers=1, num_heads=2)
    assert custom.shape() == {"embedding_dim": 32, "pwff_hidden_dim": 64, "num_layers": 1, "num_heads": 2}


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ValidationError, match="not divisible"):
        ArchitectureSettings(preset="custom", embedding_dim=30, num_heads=4)


def test_default_architecture_rule() -> None:
    given = ArchitectureSettings(preset="custom", embedding_dim=32, pwff_hidden_dim=64, num_layers=1, num_heads=2)
    simulated = ArchitectureSettings()
    assert default_architecture(given, simulated=simulated) is given
    assert default_architecture(None, simulated=simulated) is simulated
    assert default_architecture(None, simulated=None) == v1_architecture()
