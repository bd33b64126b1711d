"""User signatures: the wire form, Ed25519 verification, sender addresses, signed transactions (§13.3).

- A user signature on the wire is `flag ‖ signature ‖ public key`: flag `0x00` (Ed25519), 64
  signature bytes, 32 public-key bytes (97 bytes). The RPC carries the same three parts as separate
  fields (`UserSignature.simple{scheme, signature, public_key}`).
- The signed message is Blake2b-256(`[0, 0, 1]` ‖ BCS(tx data)) (`digests.signing_digest`).
- The signer's address is Blake2b-256(`0x00` ‖ public key) and must equal the transaction's sender.
- A signed transaction (`Transaction` = `Envelope<SenderSignedData, EmptySignInfo>`, what
  `Keypair.sign` returns and `SomaClient.execute_transaction` takes) is BCS
  `[len 1] ‖ intent(3 bytes) ‖ BCS(tx data) ‖ Vec<signature bytes>` (the empty sign info adds nothing).

Only Ed25519 single signatures exist in soma-sdk 0.1.15; multisig (flag 0x02) is refused here.
Verification uses OpenSSL's Ed25519 through `cryptography`; the chain uses fastcrypto. They agree
on every honestly made signature; for crafted edge cases (non-canonical points, small-order keys)
the libraries' malleability rules may differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from soma_ray.protocol.commitments import blake2b256
from soma_ray.protocol.wire import bcs
from soma_ray.protocol.wire.bcs import BcsError, Reader
from soma_ray.protocol.wire.digests import INTENT_TRANSACTION_DATA, signing_digest
from soma_ray.protocol.wire.transaction import SYSTEM_KINDS, TransactionData

ED25519_FLAG = 0x00
MULTISIG_FLAG = 0x02
ED25519_SIGNATURE_LENGTH = 64
ED25519_PUBLIC_KEY_LENGTH = 32
WIRE_LENGTH = 1 + ED25519_SIGNATURE_LENGTH + ED25519_PUBLIC_KEY_LENGTH


class SignatureError(ValueError):
    """A transaction's signatures do not authorise it. `reason` is the chain's error name
    (`InvalidSignature`, `IncorrectSigner`, `SignerSignatureNumberMismatch`, `UnsupportedFeatureError`)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class UserSignature:
    """One Ed25519 user signature: `scheme` flag, 64-byte signature, 32-byte public key."""

    signature: bytes
    public_key: bytes
    scheme: int = ED25519_FLAG

    def __post_init__(self) -> None:
        _check_scheme(self.scheme)
        if len(self.signature) != ED25519_SIGNATURE_LENGTH:
            raise SignatureError(
                "InvalidSignature", f"an Ed25519 signature is 64 bytes, got {len(self.signature)}"
            )
        if len(self.public_key) != ED25519_PUBLIC_KEY_LENGTH:
            raise SignatureError(
                "InvalidSignature", f"an Ed25519 public key is 32 bytes, got {len(self.public_key)}"
            )

    @classmethod
    def from_wire(cls, data: bytes) -> UserSignature:
        """Parse `flag ‖ signature ‖ public key`."""
        if not data:
            raise SignatureError("InvalidSignature", "empty signature")
        _check_scheme(data[0])
        if len(data) != WIRE_LENGTH:
            raise SignatureError("InvalidSignature", f"an Ed25519 user signature is {WIRE_LENGTH} bytes, got {len(data)}")
        return cls(data[1 : 1 + ED25519_SIGNATURE_LENGTH], data[1 + ED25519_SIGNATURE_LENGTH :], data[0])

    def to_wire(self) -> bytes:
        return bytes((self.scheme,)) + self.signature + self.public_key

    def signer(self) -> bytes:
        """The address this signature speaks for."""
        return address_from_public_key(self.public_key, self.scheme)


def _check_scheme(flag: int) -> None:
    if flag != ED25519_FLAG:
        kind = "multisig" if flag == MULTISIG_FLAG else f"scheme flag {flag:#04x}"
        raise SignatureError("UnsupportedFeatureError", f"only Ed25519 signatures are supported, got {kind}")


def address_from_public_key(public_key: bytes, scheme: int = ED25519_FLAG) -> bytes:
    """`SomaAddress::from(&pk)` = Blake2b-256(flag ‖ public key) (§2.3); hex of it = `Keypair.address()`."""
    return blake2b256(bytes((scheme,)) + public_key)


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Plain Ed25519 verification (RFC 8032) of `signature` over `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_user_signature(tx_bcs: bytes, sender: bytes, signature: UserSignature) -> None:
    """Check one signature over BCS tx data the way the chain does; raise `SignatureError` if not.

    Order as in Rust `verify_secure`: the signer derived from the public key must be `sender`
    (`IncorrectSigner`), then the Ed25519 signature must verify over `signing_digest(tx_bcs)`.
    """
    signer = signature.signer()
    if signer != sender:
        raise SignatureError(
            "IncorrectSigner", f"Incorrect signer, expected 0x{sender.hex()}, got 0x{signer.hex()}"
        )
    if not ed25519_verify(signature.public_key, signature.signature, signing_digest(tx_bcs)):
        raise SignatureError("InvalidSignature", "Fail to verify user sig")


def verify_transaction(tx_bcs: bytes, signatures: Sequence[UserSignature]) -> TransactionData:
    """Decode BCS tx data and check it is a user transaction signed by its sender; return it.

    `tx_bcs` must be the exact bytes that were signed (the codec is canonical, so re-encoding a
    transaction decoded from the wire gives them back). Exactly one signature is required: a SOMA
    transaction has one signer, the sender (`SignerSignatureNumberMismatch` otherwise). Raises
    `BcsError` for malformed bytes and `SignatureError` for anything else.
    """
    tx = TransactionData.decode(tx_bcs)
    if type(tx.kind) in SYSTEM_KINDS:
        raise SignatureError("InvalidSignature", f"{type(tx.kind).__name__} is a system transaction")
    if len(signatures) != 1:
        raise SignatureError(
            "SignerSignatureNumberMismatch", f"expected 1 signature, got {len(signatures)}"
        )
    verify_user_signature(tx_bcs, tx.sender, signatures[0])
    return tx


# --------------------------------------------------------------------------------------------- signed transactions


@dataclass(frozen=True)
class SignedTransaction:
    """`Transaction` / `SenderSignedData`: tx data (and its exact bytes) plus user signatures."""

    data: TransactionData
    tx_bcs: bytes
    signatures: tuple[UserSignature, ...]

    @classmethod
    def build(cls, data: TransactionData, signatures: Sequence[UserSignature]) -> SignedTransaction:
        return cls(data, data.encode(), tuple(signatures))

    def encode(self) -> bytes:
        return (
            bcs.uleb128(1)
            + INTENT_TRANSACTION_DATA
            + self.tx_bcs
            + bcs.vector(self.signatures, lambda s: bcs.byte_vector(s.to_wire()))
        )

    @classmethod
    def decode(cls, data: bytes) -> SignedTransaction:
        """Parse the BCS of a signed transaction (as `Keypair.sign` returns); signatures not verified."""
        reader = Reader(data)
        count = reader.uleb128()
        if count != 1:
            raise BcsError(f"SenderSignedData holds exactly one transaction, got {count}")
        intent = reader.fixed(len(INTENT_TRANSACTION_DATA))
        if intent != INTENT_TRANSACTION_DATA:
            raise BcsError(f"intent {intent.hex()} is not a SOMA transaction intent (000001)")
        start = reader.position
        tx = TransactionData.read(reader)
        tx_bcs = reader.since(start)
        signatures = tuple(UserSignature.from_wire(raw) for raw in reader.vector(Reader.byte_vector))
        reader.finish()
        return cls(tx, tx_bcs, signatures)

    def verify(self) -> TransactionData:
        """`verify_transaction` on this transaction's bytes and signatures."""
        return verify_transaction(self.tx_bcs, self.signatures)
