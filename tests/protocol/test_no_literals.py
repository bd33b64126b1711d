"""No protocol constant is written as a number outside `soma_ray/protocol/` (design.md: protocol rules
live there; everything else imports them).

How: every `.py` file under `soma_ray/`, except `soma_ray/protocol/`, is parsed with `ast`, and every
numeric literal (an `int` or `float` constant, however it is spelled: `10_000`, `10000`, `1e4` and
`10000.0` are the same value) is compared with the distinctive protocol values in `DISTINCTIVE`.
A match fails the test with file, line and the constant it duplicates: import the constant (or call
the rule in `soma_ray.protocol`) instead. Strings, comments and docstrings are not numeric literals,
so prose such as "65 shannons per byte" is allowed.

Only values unlikely to mean anything else are checked. Ordinary numbers that some protocol constants
share (1, 2, 3, 16, 50, 100, 256, 300, 1000, 1024, 0.02, 0.95, round thousands such as 5_000 or 8_000)
would flag loop bounds, ports, buffer and batch sizes, so they are left out; so are epoch offsets such
as "reveal in commit epoch + 1" (those rules live in `protocol/windows.py` and are tested there).
`ALLOWED` names the few literals that equal a protocol value by coincidence, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

from soma_ray.protocol.architecture import V1_PRESET
from soma_ray.protocol.constants import (
    BPS,
    EMBEDDING_DISTANCE_STD,
    EOS_TOKEN,
    GENESIS_EMISSION_PER_EPOCH,
    QUORUM_THRESHOLD,
    SHANNONS_PER_SOMA,
    VOCAB_SIZE,
    ProtocolParams,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "soma_ray"
P = ProtocolParams()

# literal value → (the protocol value it must stay equal to, where that lives)
DISTINCTIVE: dict[int | float, tuple[int | float, str]] = {
    10_000: (BPS, "protocol.constants.BPS (basis points; use bps_mul or the fee/reward rules)"),
    65: (P.submission_bond_per_byte, "ProtocolParams.submission_bond_per_byte (protocol.bond)"),
    264: (VOCAB_SIZE, "protocol.constants.VOCAB_SIZE"),
    257: (EOS_TOKEN, "protocol.constants.EOS_TOKEN"),
    1_048_576: (P.max_submission_data_size, "ProtocolParams.max_submission_data_size"),
    86_400: (P.target_hits_per_epoch, "ProtocolParams.target_hits_per_epoch"),
    86_400_000: (P.epoch_duration_ms, "ProtocolParams.epoch_duration_ms"),
    4_975: (P.target_submitter_reward_share_bps, "ProtocolParams reward shares (protocol.rewards)"),
    1_250: (P.fee_adjustment_rate_bps, "ProtocolParams.fee_adjustment_rate_bps (protocol.fees)"),
    6_667: (QUORUM_THRESHOLD, "protocol.constants.QUORUM_THRESHOLD"),
    1_370: (GENESIS_EMISSION_PER_EPOCH // SHANNONS_PER_SOMA, "protocol.constants.GENESIS_EMISSION_PER_EPOCH"),
    0.022: (EMBEDDING_DISTANCE_STD, "protocol.constants.EMBEDDING_DISTANCE_STD"),
    1.05: (P.target_initial_distance_threshold, "ProtocolParams.target_initial_distance_threshold"),
    2048: (V1_PRESET["embedding_dim"], "protocol.architecture.V1_PRESET / target_embedding_dim"),
    8192: (V1_PRESET["pwff_hidden_dim"], "protocol.architecture.V1_PRESET"),
}

# (path relative to the repository, literal value) → why it is not the protocol constant
ALLOWED: dict[tuple[str, int | float], str] = {
    ("soma_ray/chain/sim/genesis.py", 10_000): "EMBEDDING_SEED_BASE, the arrgen seed offset of genesis embeddings",
}


def protocol_literals() -> list[str]:
    """`path:line: value (duplicates ...)` for every offending literal outside soma_ray/protocol/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("soma_ray/protocol/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if not isinstance(node, ast.Constant) or type(node.value) not in (int, float):
                continue
            value = node.value
            if value in DISTINCTIVE and (rel, value) not in ALLOWED:
                found.append(f"{rel}:{node.lineno}: {value!r} duplicates {DISTINCTIVE[value][1]}")
    return found


def test_no_protocol_constant_is_a_literal_outside_protocol() -> None:
    found = protocol_literals()
    assert not found, "protocol constants written as literals (import them from soma_ray.protocol):\n" + "\n".join(
        found
    )


def test_the_checked_values_are_the_protocol_values() -> None:
    """The list above must follow the protocol: a changed constant updates it here too."""
    for literal, (value, where) in DISTINCTIVE.items():
        assert literal == value, f"{literal!r} is no longer {where} ({value!r}); update DISTINCTIVE"


def test_the_scan_catches_every_spelling(tmp_path: Path) -> None:
    """The ast comparison is by value: underscores, exponents and floats of the same value match."""
    source = "a = 10_000\nb = 1e4\nc = 65\nd = '65 per byte'\ne = True\nf = 264.0\n"
    values = [
        n.value for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.Constant) and type(n.value) in (int, float) and n.value in DISTINCTIVE
    ]
    assert values == [10_000, 1e4, 65, 264.0]


def test_allowed_entries_still_exist() -> None:
    """An allow-list entry whose literal is gone must be removed, so the list stays short."""
    for (rel, value), why in ALLOWED.items():
        tree = ast.parse((REPO / rel).read_text())
        assert any(
            isinstance(n, ast.Constant) and type(n.value) in (int, float) and n.value == value for n in ast.walk(tree)
        ), f"{rel} no longer contains {value!r} ({why}); drop it from ALLOWED"
