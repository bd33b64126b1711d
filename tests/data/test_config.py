"""DataConfig: defaults, the 1 MiB hard cap, unknown keys and cross-field rules, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from soma_ray.config.loader import ConfigError, build
from soma_ray.data import DETERMINISTIC_MAX_BYTES, HARD_MAX_BYTES, DataConfig


def error_of(**raw: object) -> str:
    with pytest.raises(ValidationError) as info:
        DataConfig.model_validate(raw)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return str(errors[0]["msg"])


def test_defaults() -> None:
    config = DataConfig(path=Path("corpus.txt"))
    assert config.source == "text"
    assert config.max_bytes == DETERMINISTIC_MAX_BYTES == 16_384
    assert (config.min_bytes, config.utf8_only, config.dedup, config.limit) == (1, False, True, None)
    assert config.text_unit == "file"
    assert config.local_paths == [Path("corpus.txt")]


def test_max_bytes_up_to_one_mebibyte() -> None:
    assert HARD_MAX_BYTES == 1_048_576
    assert DataConfig(path=Path("x"), max_bytes=1_048_576).max_bytes == 1_048_576
    message = error_of(path="x", max_bytes=1_048_577)
    assert "1,048,576" in message and "1 MiB" in message


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        DataConfig.model_validate({"path": "x", "max_byte": 10})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_unknown_key_is_one_line_through_the_config_loader() -> None:
    with pytest.raises(ConfigError) as info:
        build(DataConfig, {"path": "x", "max_byte": 10}, "recipe.yaml")
    assert str(info.value) == (
        "recipe.yaml: max_byte: unknown key (check the spelling; see configs/ for the accepted fields)"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"source": "huggingface", "dataset": "d", "field": "text"}, "field does not apply to source 'huggingface'"),
        ({"source": "jsonl", "path": "x", "column": "text"}, "JSONL takes `field`"),
        ({"source": "files", "path": "x", "text_unit": "line"}, "text_unit does not apply to source 'files'"),
        ({"source": "huggingface", "dataset": "json", "path": "x"}, "data_files"),
        ({"source": "text", "path": "x", "s3_bucket": "b", "split": "t"}, "s3_bucket, split do not apply"),
        ({"source": "text"}, "source 'text' needs `path`, `paths` or `globs`"),
        ({"source": "huggingface"}, "source 'huggingface' needs `dataset`"),
        ({"path": "x", "min_bytes": 10, "max_bytes": 5}, "min_bytes (10) is above max_bytes (5)"),
        ({"source": "stack_v2", "s3_endpoint_url": "localhost:9000"}, "http(s)://"),
        ({"path": "x", "limit": 0}, "greater than or equal to 1"),
    ],
)
def test_cross_field_rules(raw: dict[str, object], expected: str) -> None:
    message = error_of(**raw)
    assert expected in message
    assert "\n" not in message


def test_per_source_defaults() -> None:
    stack = DataConfig(source="stack_v2")
    assert (stack.dataset_id, stack.column_name, stack.s3_bucket, stack.s3_prefix) == (
        "bigcode/the-stack-v2-dedup",
        "blob_id",
        "softwareheritage",
        "content/",
    )
    hf = DataConfig(source="huggingface", dataset="json", data_files=["a.jsonl"])
    assert (hf.dataset_id, hf.column_name, hf.split) == ("json", "text", "train")
    assert DataConfig(source="files", globs=["**/*.py"]).globs == ["**/*.py"]


def test_relative_local_paths_become_absolute_for_remote_workers(tmp_path: Path) -> None:
    config = DataConfig(source="files", path=Path("corpus"), paths=[Path("more"), tmp_path / "abs"], globs=["*.py"])
    moved = config.with_absolute_paths(tmp_path)
    assert moved.path == tmp_path / "corpus" and moved.paths == [tmp_path / "more", tmp_path / "abs"]
    assert moved.globs == ["*.py"] and config.path == Path("corpus")
    hub = DataConfig(source="huggingface", dataset="json", data_files=["a.jsonl", "s3://b/c.jsonl"])
    assert hub.with_absolute_paths(tmp_path).data_files == [str(tmp_path / "a.jsonl"), "s3://b/c.jsonl"]
