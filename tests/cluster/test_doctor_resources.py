"""The Ray-resources check against a real Ray: this module starts one (`ray.init` with a custom
`scorer` resource); it lives in tests/cluster/ so that it runs after the session's Ray is gone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soma_ray.doctor.ray_cluster import ray_checks
from soma_ray.doctor.result import Level

REPO = Path(__file__).resolve().parents[2]


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


def test_on_the_head_of_an_autoscaling_cluster_nodes_still_to_come_are_no_failure(
        ray_with_a_scorer: None, tmp_path: Path) -> None:
    """As on the head of `ray up` with cluster/aws.yaml: the trainers are not up yet, the autoscaler may start them."""
    from soma_ray.cluster_reach import BOOTSTRAP_CONFIG

    wanted = {"scorer": 2.0, "trainer": 8.0}
    assert [c.level for c in ray_checks(wanted, needed=True, environ={"HOME": str(tmp_path)})] == [Level.FAIL] * 2
    (tmp_path / BOOTSTRAP_CONFIG).write_text((REPO / "cluster" / "aws.yaml").read_text())
    head = ray_checks(wanted, needed=True, environ={"HOME": str(tmp_path)})
    assert [c.level for c in head] == [Level.OK, Level.INFO, Level.INFO], head
    assert "trainer: 8 at once, the cluster has 0 now and its autoscaler may add up to 32" in head[2].message
    beyond = ray_checks({"trainer": 40.0}, needed=True, environ={"HOME": str(tmp_path)})
    assert [c.level for c in beyond] == [Level.FAIL] and "node types reach 32" in beyond[0].message
