"""SOMA's wire formats, pure and I/O-free: BCS, transactions, digests, signatures (protocol.md §13).

What the served network needs to accept transactions from the unmodified soma-sdk client:
`bcs` (the encoding), `base` (addresses, digests, `ObjectRef`, `SomaTensor`, `Manifest`),
`transaction` (`TransactionData` and all 26 `TransactionKind`s), `objects` (`Object` as hashed,
`Owner`, coin / `StakedSoma` / `Target` contents), `digests` (transaction and object digests,
the signing message, derived object ids) and `signatures` (Ed25519 user signatures, sender
addresses, signed transactions).

Checked against the real client (soma-sdk 0.1.15 wheel, offline, in tests/protocol/test_wire_*.py):
`Keypair.sign(tx_bytes)` parses its input as `TransactionData` with the Rust types and returns the
BCS of the signed transaction. So for every transaction kind we encode, the real Rust decoder
accepts our bytes and re-serialises them byte for byte (structure, variant indices, options,
lengths, tensor and manifest layout — and URL normalisation); the signed-transaction envelope
(`SenderSignedData`: count, intent `000001`, signatures) is parsed from its output; the signing
message, Ed25519 verification and `address = Blake2b(0x00 ‖ pk)` are checked on its signatures
and `Keypair.address()`; `SomaClient.commitment` and the embedding commitment pin Blake2b and
`BCS(SomaTensor)`.

Read from the Rust source only (tag sdk-v0.1.15; no offline call exposes them): the order of
fields that share a type (e.g. CreateModel's three u64, CommitModel's three commitments,
AddValidator's eight byte vectors), since a swap still parses; the `TransactionData::` digest
salt; the `Object::` object-digest salt and the `ObjectInner` layout; `derive_id`; the layouts of
coin, `StakedSomaV1` and `TargetV1` contents.
"""
