"""The Ray-resources check against a real Ray: this module starts one (`ray.init` with a custom
`scorer` resource); it lives in tests/cluster/ so that it runs after the session's Ray is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from soma_ray.doctor.ray_cluster import ray_checks
from soma_ray.doctor.result import Level


@pytest.fixture(scope="module")
def ray_with_a_scorer(no_session_ray: None) -> Iterator[None]:
    import ray

    ray.init(num_cpus=1, resources={"scorer": 1}, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_the_joined_cluster_is_read_for_custom_resources(ray_with_a_scorer: None) -> None:
    enough = ray_checks({"CPU": 1.0, "scorer": 1.0}, needed=True)
    assert [c.level for c in enough] == [Level.OK], enough
    assert "scorer 1" in enough[0].message
    short = ray_checks({"scorer": 2.0, "trainer": 1.0}, needed=True)
    assert [c.level for c in short] == [Level.FAIL, Level.FAIL]
    assert "scorer: 2 at once, the cluster has 1" in short[0].message
    assert "trainer: 1 at once, the cluster has 0" in short[1].message
