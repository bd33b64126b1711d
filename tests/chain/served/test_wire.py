"""The served network's own pieces: BCS bodies, settings, the checkpoint stream, port clashes."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError
from soma_sdk import Keypair, SomaClient

from soma_ray.chain.errors import ChainError
from soma_ray.chain.served import LocalnetServer, LocalnetSettings, tools
from soma_ray.chain.served.messages import rpc
from soma_ray.chain.served.views import Mask
from soma_ray.protocol.wire.bcs import BcsError
from tests.chain.served.kit import served_settings

# -- BCS ----------------------------------------------------------------------------------------


def test_bodies_are_strict_bcs() -> None:
    """The BCS bodies use the one codec of the repository (soma_ray.protocol.wire.bcs), strictly."""
    with pytest.raises(BcsError, match="end of input"):
        tools.decode_gas_request(b"\x05ab")
    with pytest.raises(BcsError, match="trailing"):
        tools.decode_gas_request(b"\x02ab\x00")


def test_faucet_and_admin_bodies() -> None:
    assert tools.encode_gas_request("0xab") == b"\x040xab"
    assert tools.decode_gas_request(b"\x040xab") == "0xab"
    response = tools.GasResponse("Success", [tools.GasCoinInfo(2_000_000_000, "0x01", "D1g")])
    raw = tools.encode_gas_response(response)
    assert raw == b"\x07Success\x01" + struct.pack("<Q", 2_000_000_000) + b"\x040x01\x03D1g"
    assert tools.decode_gas_response(raw) == response
    tools.decode_empty(b"")  # AdvanceEpochRequest{} is zero bytes
    with pytest.raises(BcsError):
        tools.decode_empty(b"\x00")
    assert tools.encode_epoch(3) == struct.pack("<Q", 3) and tools.decode_epoch(struct.pack("<Q", 3)) == 3
    assert tools.encode_health(True) == b"\x01"


def test_score_bodies_carry_floats_as_bits() -> None:
    request = tools.ScoreRequest(
        data_url="http://h/d", data_checksum="C", data_size=10,
        model_manifests=[tools.ManifestInput("http://h/w", "W", 99, "K"), tools.ManifestInput("http://h/v", "V", 1)],
        target_embedding=[0.5, -2.0], seed=0,
    )
    raw = tools.encode_score_request(request)
    assert struct.pack("<f", 0.5) + struct.pack("<f", -2.0) in raw  # u32 bit patterns, little endian
    assert tools.decode_score_request(raw) == request
    response = tools.ScoreResponse(winner=1, loss_score=[1.25], embedding=[0.1, 0.2], distance=[0.75])
    decoded = tools.decode_score_response(tools.encode_score_response(response))
    assert decoded.winner == 1 and decoded.loss_score == [1.25] and decoded.distance == [0.75]
    assert decoded.embedding == [float(struct.unpack("<f", struct.pack("<f", x))[0]) for x in (0.1, 0.2)]
    with pytest.raises(tools.ScoreRejected, match="At least one model manifest is required"):
        tools.check_score_request(tools.ScoreRequest("u", "c", 1, [], [1.0]))


# -- settings -----------------------------------------------------------------------------------


def test_settings_defaults_and_checks() -> None:
    settings = LocalnetSettings()
    assert (settings.host, settings.rpc_port, settings.faucet_port, settings.scoring_port, settings.admin_port) == (
        "127.0.0.1", 9000, 9123, 9124, 9125,
    )
    assert settings.blob_port != 9200  # left to a participant's own uploads
    assert settings.sim.path == Path(".soma-ray/localnet")
    assert settings.sim_settings().blob_url == "http://127.0.0.1:9126"
    assert LocalnetSettings.model_validate({"sim": {"genesis_models": 2}}).sim.path == Path(".soma-ray/localnet")
    assert LocalnetSettings(host="0.0.0.0").url(9000) == "http://127.0.0.1:9000"
    with pytest.raises(ValidationError, match="set blob_port instead"):
        LocalnetSettings.model_validate({"sim": {"blob_url": "http://127.0.0.1:9200"}})
    with pytest.raises(ValidationError, match="must differ"):
        LocalnetSettings(rpc_port=9123)


def test_field_masks() -> None:
    mask = Mask(["epoch", "protocol_config.protocol_version"])
    assert mask.wants("epoch") and mask.wants("protocol_config") and not mask.wants("system_state")
    assert mask.sub("protocol_config").wants("protocol_version")
    assert not mask.sub("protocol_config").wants("attributes")
    assert Mask().wants("anything") and Mask(["system_state"]).sub("system_state").wants("epoch")


# -- serving ------------------------------------------------------------------------------------


async def test_checkpoint_stream_delivers_every_transaction(tmp_path: Path) -> None:
    """Headers at once, then one checkpoint per finished transaction, whoever sent it."""
    async with LocalnetServer(served_settings(tmp_path)) as server:
        m = rpc()
        async with grpc.aio.insecure_channel(server.urls.rpc_url.removeprefix("http://")) as channel:
            subscribe = channel.unary_stream(
                "/soma.rpc.SubscriptionService/SubscribeCheckpoints",
                request_serializer=lambda x: x.SerializeToString(),
                response_deserializer=m.SubscribeCheckpointsResponse.FromString,
            )
            stream = subscribe(m.SubscribeCheckpointsRequest())
            await asyncio.wait_for(stream.initial_metadata(), 5)  # before any checkpoint exists
            client = await SomaClient(server.urls.rpc_url, faucet_url=server.urls.faucet_url)
            sent = await client.request_faucet(Keypair.generate().address())
            epoch = await server.sim.advance_epoch()
            first = await asyncio.wait_for(stream.read(), 5)
            second = await asyncio.wait_for(stream.read(), 5)
            stream.cancel()
        assert [t.digest for t in first.checkpoint.transactions] == [sent.coins_sent[0].transfer_tx_digest]
        assert second.cursor == first.cursor + 1 == second.checkpoint.sequence_number
        assert epoch == 1


async def test_a_taken_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = served_settings(tmp_path).model_copy(update={"admin_port": port})
        with pytest.raises(ChainError, match=rf"cannot listen on 127.0.0.1:{port} for the localnet admin.*admin_port"):
            await LocalnetServer(settings).start()


async def test_a_network_keeps_its_blob_url(tmp_path: Path) -> None:
    settings = served_settings(tmp_path)
    async with LocalnetServer(settings) as first:
        blob_url = first.urls.blob_url
    with pytest.raises(ChainError, match=f"publishes its blobs at {blob_url}"):
        await LocalnetServer(settings).start()  # port 0 picks another port: manifests would break
    port = int(blob_url.rsplit(":", 1)[1])
    async with LocalnetServer(settings.model_copy(update={"blob_port": port})) as again:
        assert again.urls.blob_url == blob_url


# -- transactions as the client sends them -----------------------------------------------------


def test_transaction_fields_rebuild_the_signed_bcs() -> None:
    """The traps of §13.3: URL text as received, tensor shapes, PayCoins amounts always Some, an
    optional amount None only when absent, missing fields named."""
    from soma_ray.chain.served.transactions import BadTransaction, transaction_from_proto
    from soma_ray.protocol.wire import transaction as kinds

    m = rpc()
    ref = m.ObjectReference(object_id="ab" * 32, version=3, digest="1" * 32)
    sender = "0x" + "cd" * 32

    def tx(kind: object) -> object:
        return m.Transaction(digest="x", kind=kind, sender=sender, gas_payment=[ref])

    pay = transaction_from_proto(tx(m.TransactionKind(pay_coins=m.PayCoins(coins=[ref], recipients=[sender]))))
    assert isinstance(pay.kind, kinds.PayCoins) and pay.kind.amounts == ()  # Some(vec![]), not None
    whole = transaction_from_proto(tx(m.TransactionKind(transfer_coin=m.TransferCoin(coin=ref, recipient=sender))))
    zero = transaction_from_proto(tx(m.TransactionKind(transfer_coin=m.TransferCoin(coin=ref, amount=0, recipient=sender))))
    assert isinstance(whole.kind, kinds.TransferCoin) and whole.kind.amount is None
    assert isinstance(zero.kind, kinds.TransferCoin) and zero.kind.amount == 0
    assert whole.encode() != zero.encode()

    manifest = m.Manifest(v1=m.ManifestV1(url="http://Example.com", metadata=m.Metadata(v1=m.MetadataV1(checksum=bytes(32), size=5))))
    submit = m.SubmitData(
        target_id="0x" + "01" * 32, data_manifest=m.SubmissionManifest(manifest=manifest), model_id="0x" + "02" * 32,
        embedding=[0.5, -1.0], distance_score=0.25, loss_score=[2.0], bond_coin=ref,
    )
    decoded = transaction_from_proto(tx(m.TransactionKind(submit_data=submit)))
    assert isinstance(decoded.kind, kinds.SubmitData)
    assert decoded.kind.data_manifest.url == "http://Example.com"  # kept exactly as received
    assert decoded.kind.embedding.shape == (2,) and decoded.kind.distance_score.shape == (1,)
    assert decoded.kind.loss_score.values() == [2.0]

    submit.ClearField("bond_coin")
    with pytest.raises(BadTransaction, match="missing transaction.kind.submit_data.bond_coin"):
        transaction_from_proto(tx(m.TransactionKind(submit_data=submit)))
    with pytest.raises(BadTransaction, match="missing transaction.kind"):
        transaction_from_proto(m.Transaction(sender=sender))
    bad_url = m.Manifest(v1=m.ManifestV1(url="relative/path", metadata=m.Metadata(v1=m.MetadataV1(checksum=bytes(32), size=5))))
    commit = m.CommitModel(
        model_id="0x" + "02" * 32, manifest=bad_url, weights_commitment=bytes(32), embedding_commitment=bytes(32),
        decryption_key_commitment=bytes(32),
    )
    with pytest.raises(BadTransaction, match="not an absolute URL"):
        transaction_from_proto(tx(m.TransactionKind(commit_model=commit)))


def test_failures_carry_the_details_the_client_parses() -> None:
    from soma_ray.chain.served.execution import status_message
    from soma_ray.chain.sim.execute import Effects
    from soma_ray.protocol.fees import FeeParts

    def status(name: str, detail: str | None) -> object:
        effects = Effects(
            digest=bytes(32), kind="SubmitData", sender="0x1", epoch=0, ok=False, error=name, error_detail=detail,
            fee=FeeParts(base=1), lamport=2, changes=(), gas_object=None, balance_changes=(),
        )
        return status_message(effects)

    kinds = rpc().ExecutionError.ExecutionErrorKind
    bond = status("InsufficientBond", "required: 650, provided: 5")
    assert not bond.success and bond.error.kind == kinds.Value("INSUFFICIENT_BOND")
    assert bond.error.other_error == "required=650, provided=5"
    audit = status("AuditWindowOpen", "fill_epoch: 1, current_epoch: 2; filled in epoch 1, claimable from 3")
    assert audit.error.kind == kinds.Value("CHALLENGE_WINDOW_OPEN") and audit.error.other_error == "fill_epoch=1, current_epoch=2"
    invalid = status("ModelInvalidState", "cannot commit a pending model")
    assert invalid.error.kind == kinds.Value("OTHER_ERROR")
    assert invalid.error.other_error == "Model in invalid state for this operation"
    owner = status("InvalidOwnership", "0xab is owned by 0xcd")
    assert owner.error.kind == kinds.Value("INVALID_OWNERSHIP") and owner.error.object_id == "0xab"
    args = status("InvalidArguments", "Must provide at least one coin")
    assert args.error.kind == kinds.Value("INVALID_ARGUMENTS") and args.error.other_error == "Must provide at least one coin"
    assert status("NotAValidator", None).error.kind == kinds.Value("NOT_A_VALIDATOR")
