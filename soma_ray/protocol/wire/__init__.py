"""SOMA's wire formats, pure and I/O-free: BCS, transactions, digests, signatures (protocol.md §13).

What the served network needs to accept transactions from the unmodified soma-sdk client:
`bcs` (the encoding), `base` (addresses, digests, `ObjectRef`, `SomaTensor`, `Manifest`),
`transaction` (`TransactionData` and all 26 `TransactionKind`s), `objects` (`Object` as hashed,
`Owner`, coin / `StakedSoma` / `Target` contents), `digests` (transaction and object digests,
the signing message, derived object ids) and `signatures` (Ed25519 user signatures, sender
addresses, signed transactions).

Verified against the real client (soma-sdk 0.1.15 wheel; tests/protocol/test_wire_*.py):
- Captured transactions (test_wire_client_vectors.py): the client's create_model, commit_model,
  reveal_model, submit_data, add_stake_to_model, pay_coins, claim_rewards, transfer_coin and
  merge_coins requests, recorded once at a local stub. Rebuilt here, each gives the client's
  transaction digest and verifies under its signature; the gas coin's object digest equals the
  one the client computed. This pins the full layout of CreateModel, CommitModel, RevealModel,
  SubmitData, AddStakeToModel, PayCoins, ClaimRewards and TransferCoin (field order included),
  `TransactionData::V1`, `ObjectRef`, `Manifest`, `SomaTensor`, the `TransactionData::` and
  `Object::` salts, the `ObjectInner` layout for an address-owned coin, the intent message and
  `address = Blake2b(0x00 ‖ pk)`.
- Offline, every kind (test_wire_sdk.py): `Keypair.sign(tx_bytes)` parses its input with the Rust
  `TransactionData` type and returns the BCS of the signed transaction, so for random instances
  of all 26 kinds the Rust decoder accepts our bytes and re-serialises them byte for byte
  (structure, variant indices, options, lengths, tensors, `Genesis` objects with every owner and
  object type, URL normalisation), and the signed-transaction envelope is parsed from its output.
  This cannot tell apart two adjacent fields of one type.

Read from the Rust source only (tag sdk-v0.1.15): the order of same-typed fields in kinds the
client was not captured sending (AddValidator's eight byte vectors, UpdateValidatorMetadata's
eight options, ChangeEpoch's and ConsensusCommitPrologueV1's integers); which index means which
`ObjectType`/`Owner` beyond Coin and AddressOwner; `derive_id`; the coin, `StakedSomaV1` and
`TargetV1` contents layouts.
"""
