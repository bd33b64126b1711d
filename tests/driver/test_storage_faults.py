"""Storage faults around a submission or a commit, without Ray: S3 (moto behind a real
fault-injecting proxy) answering 5xx or stalling mid-upload, or the public URL answering 403,
404 or other bytes. Nothing reaches the chain, nothing is recorded, the driver raises one line
without secrets, and the same call succeeds exactly once after the fault clears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from soma_ray.chain.types import ModelStatus, Target
from soma_ray.driver.driver import Driver
from soma_ray.errors import SomaRayError
from soma_ray.protocol.commitments import canonical_address, commitment
from soma_ray.storage import S3BlobStore, fetch_url
from tests.driver.kit import chain_txs, make_driver, write_artifacts
from tests.kit import DUMMY_KEY_ID, DUMMY_SECRET, Fault, FaultProxy, boto_client

FundFn = Any
BUCKET = "soma-driver-faults"
DATA = b"storage faults must not cost a submission " * 20


@pytest.fixture
def faulty_store(fault_proxy: FaultProxy, moto_endpoint: str) -> S3BlobStore:
    """An S3 store whose uploads and public URL both go through the fault proxy."""
    client = boto_client("s3", moto_endpoint)
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    return S3BlobStore(
        BUCKET, endpoint_url=fault_proxy.url, public_url=f"{fault_proxy.url}/{BUCKET}",
        access_key_id=DUMMY_KEY_ID, secret_access_key=DUMMY_SECRET,
        read_timeout=0.5, connect_timeout=0.5, max_attempts=2,
    )


def one_clean_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert isinstance(err.value, SomaRayError) and "\n" not in text
    assert DUMMY_SECRET not in text and DUMMY_KEY_ID not in text and "?" not in text
    return text


async def _submit(driver: Driver, target: Target) -> Any:
    embedding = np.ones(len(target.embedding), np.float32).tolist()
    return await driver.submit(target.id, DATA, target.model_ids[0], embedding, 0.0, 1.0)


# What each fault must say: the problem, and what to do.
SUBMIT_FAULTS = [
    (Fault(500, "PUT", "/data/"), "answered HTTP 500", "retry later"),
    (Fault(503, "PUT", "/data/"), "answered HTTP 503", "retry later"),
    (Fault("stall", "PUT", "/data/"), "did not answer within 0.5 s", "read_timeout_s"),
    (Fault("drop", "PUT", "/data/"), "connection to bucket", "retry later"),
    (Fault(403, "GET", "/data/"), "HTTP 403", "make the bucket public-read"),
    (Fault(404, "GET", "/data/"), "HTTP 404", "fix the storage public URL"),
    (Fault("garble", "GET", "/data/"), "serves different bytes", "fix the storage public URL"),
]


async def _started(served_sim: Any, fund: FundFn, store: S3BlobStore, tmp_path: Path) -> tuple[Any, Driver, str]:
    """(network, a started driver of a funded wallet uploading to `store`, its address)."""
    sim, server = served_sim
    signer = await fund(2)
    driver = make_driver(sim, server.url, signer, tmp_path, store=store)
    await driver.start()
    return sim, driver, canonical_address(signer.address())


@pytest.mark.parametrize(("fault", "problem", "fix"), SUBMIT_FAULTS, ids=lambda v: str(getattr(v, "action", "")))
async def test_a_storage_fault_sends_no_submission_and_a_retry_sends_one(
    fault: Fault, problem: str, fix: str, served_sim: Any, fund: FundFn, faulty_store: S3BlobStore,
    fault_proxy: FaultProxy, tmp_path: Path,
) -> None:
    sim, driver, me = await _started(served_sim, fund, faulty_store, tmp_path)
    target = (await sim.all_targets("open"))[0]
    fault_proxy.inject(fault)

    with pytest.raises(SomaRayError) as err:
        await _submit(driver, target)
    text = one_clean_line(err)
    assert f"submission to target {target.id} not sent" in text and problem in text and fix in text
    assert fault_proxy.count(fault.method, "/data/", str(fault.action)) >= 1  # the fault did happen
    assert chain_txs(sim, "SubmitData", me, ok=None) == 0
    assert driver.state.get(f"submit:{target.id}") is None and driver.ledger().submissions == 0

    fault_proxy.clear()
    assert await _submit(driver, target) is not None
    assert await _submit(driver, target) is None  # once per target, as always
    assert chain_txs(sim, "SubmitData", me, ok=None) == 1 and driver.ledger().submissions == 1
    url = (await sim.get_target(target.id)).data_url
    assert url is not None and fetch_url(url) == DATA  # the URL on chain serves the submitted bytes


async def test_a_5xx_mid_weights_upload_sends_no_commit(
    served_sim: Any, fund: FundFn, faulty_store: S3BlobStore, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    sim, driver, me = await _started(served_sim, fund, faulty_store, tmp_path)
    manifest = write_artifacts(tmp_path / "artifacts", sim)
    fault_proxy.inject(Fault(503, "PUT", "/models/"))

    with pytest.raises(SomaRayError) as err:
        await driver.commit(str(manifest))
    text = one_clean_line(err)
    assert "commit of model" in text and "not sent" in text and "answered HTTP 503" in text
    model_id = driver.state.meta("model_id")
    assert model_id is not None and (await sim.get_model(model_id)).status != ModelStatus.PENDING
    assert chain_txs(sim, "CommitModel", me, ok=None) == 0
    assert [a.key for a in driver.state.actions() if a.key.startswith("commit:")] == []

    fault_proxy.clear()
    result = await driver.commit(str(manifest))
    assert chain_txs(sim, "CommitModel", me, ok=None) == 1
    model = await sim.get_model(result.model_id)
    assert model.status == ModelStatus.PENDING and model.manifest is not None
    # The URL the chain names serves exactly the committed (encrypted) weights.
    served = fetch_url(model.manifest.url)
    assert commitment(served) == model.manifest.checksum and len(served) == model.manifest.size
