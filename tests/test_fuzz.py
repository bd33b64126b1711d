"""Bad input, fuzzed (hypothesis): every config field, signing keys and URLs. The answer is always
one clear line of the project's own error type: never a traceback, never a secret."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from soma_ray.chain.wallet import WalletError, keypair_from_secret
from soma_ray.config import JOB_CONFIGS, ConfigError, load_config
from soma_ray.storage import StorageError, fetch_url
from soma_ray.storage.fetcher import CHAIN_POLICY
from tests.kit import CANARY, FUZZ, one_clear_line


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every field of a config model, sections followed down to their leaves (a.b.c)."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        kinds = [info.annotation, *getattr(info.annotation, "__args__", ())]
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                paths += field_paths(kind, f"{path}.")
    return sorted(set(paths))


# Values as a user might type them after `--set path=`: YAML scalars, flow collections, junk.
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "~", "null", "[", "{a: 1", "- x", "true", "[1, 2]", "{}", "${SOMA_SECRET_KEY}", "'", ": :"]),
)


@pytest.mark.parametrize("kind", sorted(JOB_CONFIGS))
@FUZZ
@given(data=st.data())
def test_any_value_for_any_field_is_one_line(kind: str, data: Any) -> None:
    model = JOB_CONFIGS[kind]
    path = data.draw(st.sampled_from(field_paths(model)), label="field")
    value = data.draw(VALUES, label="value")
    required = {"submit": ["data.source=text", "data.path=x"], "train": ["data.source=text", "data.path=x"],
                "sweep": ["data.source=text", "data.path=x", "sweep.parameters={training.lr: {values: [0.1]}}"]}
    try:
        load_config(model, None, [*required.get(kind, []), f"{path}={value}"], env={"SOMA_SECRET_KEY": CANARY})
    except ConfigError as error:
        one_clear_line(error)


@FUZZ
@given(secret=st.one_of(st.text(min_size=1, max_size=120), st.binary(max_size=64).map(bytes.hex)))
def test_a_bad_signing_key_is_one_line_that_never_shows_it(secret: str) -> None:
    try:
        keypair_from_secret(secret, "wallet.secret_key (SOMA_SECRET_KEY)")
    except WalletError as error:
        text = one_clear_line(error)
        if len(secret.strip()) >= 8:
            assert secret.strip() not in text


@pytest.mark.parametrize("url", ["http://[", "http://[::1", "https://a:b:c/", "http://127.0.0.1:99999/", "http:///x",
                                 "http://127.0.0.1:9/\u0080", "http://127.0.0.1:9/a b", "file:///dev/zero"])
def test_malformed_urls_are_one_line(url: str) -> None:
    with pytest.raises(StorageError) as caught:
        fetch_url(url, policy=replace(CHAIN_POLICY, timeout=2.0, retries=0))
    one_clear_line(caught.value)


@FUZZ
@given(
    scheme=st.sampled_from(["http", "https", "file", "s3", "ftp", "gopher", "javascript", "", "HTTP", "data"]),
    rest=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60),
)
def test_a_hostile_url_is_one_line(scheme: str, rest: str) -> None:
    """Hosts are pinned to a closed loopback port or a refused one, so nothing leaves the machine."""
    host = "127.0.0.1:9" if scheme.lower().startswith("http") else "somewhere"
    url = f"{scheme}://{host}/{rest}" if scheme else rest
    with pytest.raises(StorageError) as caught:
        fetch_url(url, policy=replace(CHAIN_POLICY, timeout=2.0, retries=0))
    one_clear_line(caught.value)
