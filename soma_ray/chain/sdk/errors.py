"""`parse_sdk_error`: every soma-sdk failure re-raised as a typed `ChainError`."""

from __future__ import annotations

import re

from soma_ray.chain.errors import (
    ChainError,
    ChainUnavailable,
    NotSupported,
    ObjectNotFound,
    TransactionFailed,
    error_from_name,
)

_FAILURE_RE = re.compile(r"Failure\s*\{\s*error:\s*([A-Za-z_]\w*)")
_DIGEST_RE = re.compile(r"\(digest:\s*([^)\s]+)\)")
_STATUS_RE = re.compile(r'status:\s*(\w+),\s*message:\s*"((?:[^"\\]|\\.)*)"')
_CONVERSION_RE = re.compile(r"missing object_id for (\w+)")
_UNAVAILABLE_MARKERS = (
    "transport error",
    "tcp connect error",
    "status: unavailable",
    "dns error",
    "connection refused",
    "connection reset",
    "error trying to connect",
    "broken pipe",
)
_NOT_FOUND_MARKERS = ("not found", "could not find", "status: notfound", "does not exist")
# Execution failures the RPC conversion turns into `SomaError(GenericAuthorityError {...})`.
_SOMA_ERROR_TEXTS = {
    "model in invalid state": "ModelInvalidState",
    "arithmetic overflow": "ArithmeticOverflow",
}


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _enclosed(text: str) -> str | None:
    """The contents of the {...} or (...) group `text` starts with (nesting respected)."""
    text = text.lstrip()
    if not text or text[0] not in "{(":
        return None
    opener = text[0]
    closer = "}" if opener == "{" else ")"
    depth = 0
    for index, char in enumerate(text):
        if char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return text[1:index].strip()
    return text[1:].strip()


def _reason(text: str) -> str:
    """A readable one-line reason: the gRPC status message if there is one, else the text."""
    match = _STATUS_RE.search(text)
    if match:
        return _one_line(f"{match.group(1)}: {match.group(2)}")
    return _one_line(text.splitlines()[0] if text.strip() else text)


def parse_sdk_error(exc: BaseException, *, endpoint: str | None = None) -> ChainError:
    """The typed error for an exception raised by a soma-sdk call.

    - `"... failed (digest: D): Failure { error: Name { k: v } }"` -> the `TransactionFailed`
      subclass named `Name` (plain `TransactionFailed` when unknown) with `digest=D`,
      `detail="k: v"`;
    - transport / connection failures -> `ChainUnavailable` (naming `endpoint` when given);
    - missing objects ("not found") -> `ObjectNotFound`;
    - a service the client was built without -> `NotSupported`;
    - anything else -> `ChainError` with the first line of the message.
    """
    if isinstance(exc, ChainError):
        return exc
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    digest_match = _DIGEST_RE.search(text)
    digest = digest_match.group(1) if digest_match else None

    failure = _FAILURE_RE.search(text)
    if failure:
        name = failure.group(1)
        detail = _enclosed(text[failure.end() :])
        if name == "SomaError" and detail is not None:
            for needle, mapped in _SOMA_ERROR_TEXTS.items():
                if needle in detail.lower():
                    name = mapped
                    break
        return error_from_name(
            name, digest=digest, detail=_one_line(detail) if detail else None
        )
    conversion = _CONVERSION_RE.search(text)
    if conversion:
        # Executed ObjectNotFound / InvalidOwnership / InvalidObjectType failures do not convert
        # back from protobuf in the SDK, so they arrive without digest as a conversion error.
        return error_from_name(conversion.group(1), detail=_reason(text))
    if digest is not None and " failed (digest:" in text:
        return TransactionFailed(_reason(text), digest=digest)

    reason = _reason(text)
    if any(marker in lowered for marker in _UNAVAILABLE_MARKERS):
        where = endpoint or "the SOMA network"
        return ChainUnavailable(
            f"cannot reach {where} ({reason}); check that it is running and the URL is right"
        )
    if "not configured" in lowered or "was provided when creating somaclient" in lowered:
        return NotSupported(reason)
    if any(marker in lowered for marker in _NOT_FOUND_MARKERS):
        return ObjectNotFound(reason)
    return ChainError(reason)
