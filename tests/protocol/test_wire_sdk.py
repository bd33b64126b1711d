"""The wire codec against the real client: the soma-sdk 0.1.15 wheel, offline (protocol.md §13.3).

`Keypair.sign(tx_bytes)` decodes its input with the Rust `TransactionData` type (`bcs::from_bytes`:
strict, no trailing bytes) and returns the BCS of the signed `Transaction`. So for each of our
encodings: Rust parses it, and the tx data inside the returned envelope is Rust's own
re-serialisation — it must equal our bytes exactly. The returned signature is the real client's
signature, which our verifier must accept (and reject once tampered with), and its public key must
hash to `Keypair.address()`.
"""

from __future__ import annotations

import random

import pytest
from soma_sdk import Keypair

from soma_ray.protocol.wire.base import Manifest, ObjectRef, address_hex, parse_address
from soma_ray.protocol.wire.digests import signing_digest
from soma_ray.protocol.wire.signatures import (
    SignatureError,
    SignedTransaction,
    UserSignature,
    address_from_public_key,
    ed25519_verify,
    verify_transaction,
)
from soma_ray.protocol.wire.transaction import (
    KINDS,
    SYSTEM_KINDS,
    CommitModel,
    SubmitData,
    TransactionData,
    TransactionKind,
)
from tests.protocol import kit

SECRET = bytes(range(1, 33))
ROUNDS = 12


@pytest.fixture(scope="module")
def keypair() -> Keypair:
    return Keypair.from_secret_key(SECRET)


def sign(kp: Keypair, tx: TransactionData) -> SignedTransaction:
    return SignedTransaction.decode(kp.sign(tx.encode()))


@pytest.mark.parametrize("cls", KINDS, ids=[k.__name__ for k in KINDS])
def test_rust_reads_and_rewrites_our_bytes_exactly(keypair: Keypair, cls: type[TransactionKind]) -> None:
    rng = random.Random(1000 + cls.VARIANT)
    sender = parse_address(keypair.address())
    for _ in range(ROUNDS):
        tx = kit.transaction(rng, cls, sender=sender, normalized_urls=True)
        ours = tx.encode()
        signed = sign(keypair, tx)
        assert signed.tx_bcs == ours, f"Rust re-serialised {cls.__name__} differently"
        assert signed.data == tx
        assert signed.encode() == keypair.sign(ours)  # our envelope encoder = Rust's (Ed25519 is deterministic)
        if cls in SYSTEM_KINDS:
            with pytest.raises(SignatureError):
                signed.verify()
        else:
            assert signed.verify() == tx


def test_the_real_signature_verifies_and_names_the_sender(keypair: Keypair) -> None:
    rng = random.Random(7)
    sender = parse_address(keypair.address())
    tx = kit.transaction(rng, SubmitData, sender=sender, normalized_urls=True)
    signed = sign(keypair, tx)
    (sig,) = signed.signatures
    assert sig.scheme == 0 and len(sig.signature) == 64 and len(sig.public_key) == 32
    assert address_from_public_key(sig.public_key) == sender
    assert address_hex(sig.signer()) == "0x" + keypair.address()
    assert ed25519_verify(sig.public_key, sig.signature, signing_digest(signed.tx_bcs))
    assert verify_transaction(tx.encode(), [sig]) == tx
    assert UserSignature.from_wire(sig.to_wire()) == sig


def test_tampering_is_rejected(keypair: Keypair) -> None:
    rng = random.Random(8)
    sender = parse_address(keypair.address())
    gas = (ObjectRef(rng.randbytes(32), 3, rng.randbytes(32)),)
    tx = TransactionData(kit.kind(rng, CommitModel, normalized_urls=True), sender, gas)
    raw = tx.encode()
    (sig,) = sign(keypair, tx).signatures
    bad_sig = UserSignature(bytes((sig.signature[0] ^ 1,)) + sig.signature[1:], sig.public_key)
    with pytest.raises(SignatureError) as e:
        verify_transaction(raw, [bad_sig])
    assert e.value.reason == "InvalidSignature"
    # a flipped bit inside the gas coin digest still decodes, but no longer matches the signature
    flipped = raw[:-1] + bytes((raw[-1] ^ 1,))
    with pytest.raises(SignatureError, match="InvalidSignature"):
        verify_transaction(flipped, [sig])
    # a different sender: the key no longer speaks for it
    other = TransactionData(tx.kind, bytes(32), tx.gas_payment).encode()
    with pytest.raises(SignatureError) as e:
        verify_transaction(other, [sig])
    assert e.value.reason == "IncorrectSigner"
    # someone else's valid signature over the same bytes
    stranger = Keypair.generate()
    (their,) = SignedTransaction.decode(stranger.sign(raw)).signatures
    with pytest.raises(SignatureError, match="IncorrectSigner"):
        verify_transaction(raw, [their])
    with pytest.raises(SignatureError, match="SignerSignatureNumberMismatch"):
        verify_transaction(raw, [sig, sig])
    with pytest.raises(SignatureError, match="SignerSignatureNumberMismatch"):
        verify_transaction(raw, [])


def test_wire_signature_forms() -> None:
    with pytest.raises(SignatureError, match="UnsupportedFeatureError"):
        UserSignature.from_wire(b"\x02" + bytes(96))
    with pytest.raises(SignatureError, match="InvalidSignature"):
        UserSignature.from_wire(b"\x00" + bytes(95))
    with pytest.raises(SignatureError):
        UserSignature.from_wire(b"")


def test_generated_keys_match_addresses() -> None:
    for _ in range(5):
        kp = Keypair.generate()
        sender = parse_address(kp.address())
        tx = TransactionData(kit.kind(random.Random(0), KINDS[23]), sender, ())
        (sig,) = sign(kp, tx).signatures
        assert address_from_public_key(sig.public_key) == sender


def test_rust_normalises_urls_so_only_normalised_urls_round_trip(keypair: Keypair) -> None:
    """The SDK signs `url::Url`'s normalised text: a server rebuilding a transaction must keep the
    URL exactly as received (it is already normalised), never re-spell it."""
    rng = random.Random(3)
    sender = parse_address(keypair.address())
    base = kit.transaction(rng, SubmitData, sender=sender, normalized_urls=True)
    assert isinstance(base.kind, SubmitData)
    m = base.kind.data_manifest
    odd = TransactionData(
        SubmitData(
            base.kind.target_id, Manifest("HTTP://Example.COM", m.checksum, m.size), base.kind.model_id,
            base.kind.embedding, base.kind.distance_score, base.kind.loss_score, base.kind.bond_coin,
        ),
        sender, base.gas_payment,
    )
    signed = sign(keypair, odd)
    assert isinstance(signed.data.kind, SubmitData)
    assert signed.data.kind.data_manifest.url == "http://example.com/"
    assert signed.tx_bcs != odd.encode()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw + b"\x00",  # trailing byte
        lambda raw: raw[:-1],  # truncated
        lambda raw: b"\x00\x1a" + raw[2:],  # TransactionKind 26
        lambda raw: b"\x01" + raw[1:],  # TransactionData::V2
    ],
    ids=["trailing", "truncated", "kind-26", "data-v2"],
)
def test_rust_and_we_reject_the_same_malformed_bytes(keypair: Keypair, mutate: object) -> None:
    tx = TransactionData(
        kit.kind(random.Random(4), KINDS[23]), parse_address(keypair.address()),
        (ObjectRef(bytes(32), 1, bytes(32)),),
    )
    bad = mutate(tx.encode())  # type: ignore[operator]
    with pytest.raises(ValueError):
        keypair.sign(bad)
    with pytest.raises(ValueError):
        TransactionData.decode(bad)

