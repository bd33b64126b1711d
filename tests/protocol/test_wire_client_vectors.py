"""Transactions built by the real soma-sdk 0.1.15 client, rebuilt with our codec (protocol.md §13.3).

The vectors were recorded once (2026-11-28) by pointing an unmodified `SomaClient` at a throw-away
local gRPC stub: it listed the two coins below (`ListOwnedObjects`), answered `GetEpoch` with
`model_architecture_version = 7`, and captured each `ExecuteTransaction` request. Recorded per
call: the gas coin the client chose (it picks at random), the transaction digest it sent, the
object digest it computed for that gas coin, and its Ed25519 signature.

Here each transaction is rebuilt from the same inputs with soma_ray.protocol.wire. Matching the
client's digest and verifying its signature pins what the offline `Keypair.sign` round trip
cannot: the order of same-typed fields (CreateModel's three u64, CommitModel's commitments,
SubmitData's three tensors and two ids), the `TransactionData::` salt, and — through the gas
`ObjectRef` — the object digest (`Object::` salt, `ObjectInner` layout, contents without the id).
"""

from __future__ import annotations

import pytest
from soma_sdk import Keypair

from soma_ray.protocol.commitments import blake2b256
from soma_ray.protocol.wire.base import Manifest, ObjectRef, SomaTensor, parse_address
from soma_ray.protocol.wire.digests import object_digest, to_base58, transaction_digest
from soma_ray.protocol.wire.objects import AddressOwner, Object, ObjectType, coin_contents
from soma_ray.protocol.wire.signatures import SignedTransaction, UserSignature, verify_transaction
from soma_ray.protocol.wire.transaction import (
    AddStakeToModel,
    ClaimRewards,
    CommitModel,
    CreateModel,
    PayCoins,
    RevealModel,
    SubmitData,
    TransactionData,
    TransactionKind,
    TransferCoin,
)

SECRET = bytes(range(1, 33))  # a public test key
PUBLIC_KEY = bytes.fromhex("79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664")
SENDER = parse_address("7573c697fa68450f04fa0dee2d39dcdc8a5ccf5db547f3e47638a6f8eeeec110")
COINS = {
    0x42: Object(bytes([0x42]) * 32, ObjectType.COIN, 7, coin_contents(50_000_000_000), AddressOwner(SENDER), bytes([0x99]) * 32),
    0x43: Object(bytes([0x43]) * 32, ObjectType.COIN, 3, coin_contents(40_000_000_000), AddressOwner(SENDER), bytes([0x98]) * 32),
}
MODEL = bytes([0xAB]) * 32
TARGET = bytes([0xCD]) * 32
EMBEDDING = [0.5, -1.25, 3.0, 0.0078125]
KEY = bytes(range(100, 132))
WEIGHTS = b"encrypted-weights"
DATA = b"some data bytes"


def ref(coin: int) -> ObjectRef:
    obj = COINS[coin]
    return ObjectRef(obj.object_id, obj.version, object_digest(obj))


def kind_for(call: str, gas: int, other: int) -> TransactionKind:
    """The kind each SomaClient call sends, from the arguments it was given (`other`: the non-gas coin)."""
    if call == "create_model":  # create_model(kp, commission_rate=321, stake_amount=2.5)
        return CreateModel(2_500_000_000, 321, 7)
    if call == "commit_model":  # commit_model(kp, MODEL, url, WEIGHTS, base58(KEY), EMBEDDING)
        return CommitModel(
            MODEL, Manifest("https://example.com/w.bin", blake2b256(WEIGHTS), len(WEIGHTS)), blake2b256(WEIGHTS),
            blake2b256(SomaTensor.from_values(EMBEDDING).encode()), blake2b256(KEY),
        )
    if call == "reveal_model":  # reveal_model(kp, MODEL, base58(KEY), EMBEDDING)
        return RevealModel(MODEL, KEY, SomaTensor.from_values(EMBEDDING))
    if call == "submit_data":  # submit_data(kp, TARGET, DATA, url, MODEL, EMBEDDING, 0.875, [2.5])
        return SubmitData(
            TARGET, Manifest("https://example.com/d", blake2b256(DATA), len(DATA)), MODEL,
            SomaTensor.from_values(EMBEDDING), SomaTensor.from_values([0.875]), SomaTensor.from_values([2.5]),
            ref(other),
        )
    if call == "add_stake_to_model":  # add_stake_to_model(kp, MODEL, 1.5)
        return AddStakeToModel(MODEL, ref(other), 1_500_000_000)
    if call == "pay_coins":  # pay_coins(kp, [MODEL, TARGET], [0.25, 0.5]); the paying coin is also the gas
        return PayCoins((ref(gas),), (250_000_000, 500_000_000), (MODEL, TARGET))
    if call == "claim_rewards":
        return ClaimRewards(TARGET)
    if call == "merge_coins":  # the smallest coin, whole, to self; the rest pay gas
        return TransferCoin(ref(other), None, SENDER)
    if call == "transfer_coin":  # transfer_coin(kp, MODEL, 0.125)
        return TransferCoin(ref(other), 125_000_000, MODEL)
    raise AssertionError(call)


# call → (gas coin, tx digest, gas object digest, signature) as the client sent them
VECTORS = {
    "create_model": (0x42, "9cKQADfMtJXtRB7tmpsU9TtbKHvZmHjQYxfGnBsuQdhE", "EQZywq2mX1HZg9GNXVzZYj6AhxDzTn63EFAUpMFqiCTB",
        "ad2a7dc49de828a19cacd4fa87a669052c0c58162dd7d3cfddebc2de254fef579e457fa44539e628c8444ed16ed5058e36f679c51752c0545c93965e9b458008"),
    "commit_model": (0x42, "8vpBzwRqUfGLsgzbTVnvUBetaSyKXE85qTYQDRFHxBwv", "EQZywq2mX1HZg9GNXVzZYj6AhxDzTn63EFAUpMFqiCTB",
        "920e807c9a3926b1ca6e61191e73c73929cd4e4501a5499ccce35b0050580a72f248ee5920c5ee80d94f5a3abecfb83857df72bf069eac489daa9d483bb5b404"),
    "reveal_model": (0x43, "9EeuwMza8CJo9QTDc6M6GqX8iNU2qSdEk8twjBiF8SaV", "9CLZymDRPf3c1crtaa57W7zniGHTu9st6w4kaT2Awsft",
        "32204c28859be17a4f4acce3e89b723263e624e06e702cb9a5983b4565d2f447e35963a1349e91e6fdb10206ce53d4a80c0e776d16a97aa83db5c4eeba0a3901"),
    "submit_data": (0x43, "614TpkcJd9F7oyaPh7wmF8qN9ggMfziggNPoTNDZ24GX", "9CLZymDRPf3c1crtaa57W7zniGHTu9st6w4kaT2Awsft",
        "da76eeb7a4e8b7364895085c4965e0d49e9ba4280ff3e23d84bd248bf0b0e63b6e3f426411178f10c1a70ad89f30ef10f6a112a90f2c7e0b8dabf81a121bad00"),
    "add_stake_to_model": (0x43, "GDqfJL3gPGr7kioQJDfPWUXke8KU3HkKEPyUvAYnSwm1", "9CLZymDRPf3c1crtaa57W7zniGHTu9st6w4kaT2Awsft",
        "a7e61614ca803d226643b3c1cc56ac69800ddc2acc8b17d6f95460842a05a08e54fe121c16a23bb685ba00cfd06adb111bbbb54474aeb2e660c54f4cbd524a04"),
    "pay_coins": (0x42, "8vYy491cufajbX4sAYjucCpPfhPPuBXayUmnyYHZ5AH6", "EQZywq2mX1HZg9GNXVzZYj6AhxDzTn63EFAUpMFqiCTB",
        "4eeb3d6ce089dfcff2c062198c51259bcba84ec086dd50e3a559fab4e13759fd2c9862b49831846e809f523767c53742fdd17b78f932a8f42e95dd50eed95804"),
    "claim_rewards": (0x42, "A7c4Jy4H29TfES8A1vw3CUHxVQD5kmxEvY4J2grCTY8J", "EQZywq2mX1HZg9GNXVzZYj6AhxDzTn63EFAUpMFqiCTB",
        "d4ede958340f0c593acc4496995f67de7a24193a73e64e8ee8a480c9702d93a86348e198fb751d05ec648275113e958f99f38cf58e118998cab7543730731008"),
    "merge_coins": (0x42, "3DVNCqN6NRUZbJFC2cGKBcoUE1ZM91aL5q9fD4H6rFEV", "EQZywq2mX1HZg9GNXVzZYj6AhxDzTn63EFAUpMFqiCTB",
        "a90498ad3e69b4219de22185c06ca8016cc12c2c6a595b8aa1c6d1cb9af57cf28d3fe70d8e7a44c3f3e35ecaf1444f85fa70fc83b1e01e8ce8a719cfc4e5c907"),
    "transfer_coin": (0x43, "3q5vFtcKQnHjcWSj4MXXiDqUHbtoNEyLKvx1oUxdFJGc", "9CLZymDRPf3c1crtaa57W7zniGHTu9st6w4kaT2Awsft",
        "793806c88651792075b3b91affa35f65ef139a328754e28bf7559dd072788600ae1af6d57152548fac082a3037ffa4abe309e5c96f7f55f3edf20b5ec268ec0f"),
}


def test_the_test_key_is_the_recorded_sender() -> None:
    assert parse_address(Keypair.from_secret_key(SECRET).address()) == SENDER


@pytest.mark.parametrize("call", list(VECTORS))
def test_we_rebuild_what_the_client_signed(call: str) -> None:
    gas, digest, gas_digest, signature = VECTORS[call]
    assert to_base58(object_digest(COINS[gas])) == gas_digest  # the client's own object digest
    other = next(c for c in COINS if c != gas)
    tx = TransactionData(kind_for(call, gas, other), SENDER, (ref(gas),))
    raw = tx.encode()
    assert to_base58(transaction_digest(raw)) == digest
    sig = UserSignature(bytes.fromhex(signature), PUBLIC_KEY)
    assert verify_transaction(raw, [sig]) == tx
    # Ed25519 is deterministic: Keypair.sign over our bytes reproduces the client's signature
    (again,) = SignedTransaction.decode(Keypair.from_secret_key(SECRET).sign(raw)).signatures
    assert again == sig
