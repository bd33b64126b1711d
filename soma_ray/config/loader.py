"""YAML → typed config: `${VAR}` interpolation, `--set a.b=value` overrides, one-line errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from soma_ray.config.jobs import JOB_CONFIGS
from soma_ray.driver.config import JobConfig
from soma_ray.errors import InputError

M = TypeVar("M", bound=BaseModel)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(InputError):
    """A bad config, as one line: `file: field.path: what is wrong`."""


def environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over a gitignored `.env` (the environment wins)."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    values.update(os.environ)
    return values


def interpolate(value: Any, env: Mapping[str, str], source: str, path: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a loaded YAML tree."""
    if isinstance(value, dict):
        return {k: interpolate(v, env, source, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, source, f"{path}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{source}: {path}: environment variable {name} is not set; export it or add it to .env"
        )

    return _VAR.sub(substitute, value)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """`--set a.b=value`: the value is parsed as YAML, so numbers and booleans keep their type."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: --set {item!r}: expected KEY.PATH=VALUE, e.g. chain.network=testnet")
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: {key}: {part} is not a section, cannot set a field inside it")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            raise ConfigError(
                f"{source}: --set {key.strip()}: the value is not valid YAML; quote it, e.g. {key.strip()}='...'"
            ) from None
    return raw


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass an existing YAML (see configs/)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: {where}{problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(loaded).__name__}")
    return loaded


def _written_value(template: Any, loc: Sequence[Any]) -> Any:
    """The value as written in the YAML/--set, before `${VAR}` substitution (None if absent)."""
    node = template
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def validation_line(source: str, exc: ValidationError, template: Any = None) -> str:
    """The first validation problem as `source: field.path: message`.

    The offending value is echoed only when it was written literally: a value that came from
    an environment variable may be a secret and is never shown.
    """
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see configs/ for the accepted fields)"
    else:
        written = _written_value(template, first["loc"])
        if isinstance(written, (int, float, bool)) or (isinstance(written, str) and "${" not in written):
            message = f"{message} (got {written!r})"
    return f"{source}: {loc}: {message}"


def build(model: type[M], raw: dict[str, Any], source: str, template: Any = None) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(validation_line(source, exc, template)) from None


def load_config(
    model: type[M],
    path: Path | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> M:
    """Load `path` (or defaults when None) into `model`, interpolating env vars and applying overrides."""
    source = str(path) if path is not None else "(defaults)"
    template = apply_overrides(read_yaml(path) if path is not None else {}, overrides, source)
    raw = interpolate(template, environment() if env is None else env, source)
    return build(model, raw, source, template)


def load_job_config(
    path: Path, overrides: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> JobConfig:
    """Load a recipe whose top-level `kind:` names the job it configures."""
    kind = read_yaml(path).get("kind")
    kinds = " | ".join(JOB_CONFIGS)
    if kind is None:
        raise ConfigError(f"{path}: kind: missing; add a top-level `kind: {kinds}` line naming the job")
    if kind not in JOB_CONFIGS:
        raise ConfigError(f"{path}: kind: must be one of {', '.join(JOB_CONFIGS)}, got {kind!r}")
    return load_config(JOB_CONFIGS[kind], path, overrides, env)
