"""Cluster configs: launcher YAMLs, KubeRay manifests, the Dockerfile and docs/cluster.md.

Validated with Ray's own code where Ray has it — the launcher's config preparation and
validation (`prepare_config`, `validate_config`, the v2 `AutoscalingConfig`), its v2 scheduler
for which node type a demand launches, and its KubeRay translator for RayCluster specs — and
checked for the things this project relies on: a GPU-free on-demand head holding the driver's
state, `scorer`/`trainer` resources on 24 GB / 80 GB GPUs, spot and on-demand types per role,
torch pinned before soma-ray, recipes that exist and load, and no secret anywhere. No Ray
cluster is started.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml
from packaging.requirements import Requirement
from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.autoscaler.v2.instance_manager.config import AutoscalingConfig
from ray.autoscaler.v2.instance_manager.subscribers.cloud_resource_monitor import CloudResourceMonitor
from ray.autoscaler.v2.scheduler import ResourceDemandScheduler, SchedulingRequest
from ray.autoscaler.v2.utils import ResourceRequestUtil
from ray.core.generated.autoscaler_pb2 import ResourceRequestByCount
from ray.core.generated.instance_manager_pb2 import Instance, InstanceUpdateEvent

from soma_ray.config import SubmitConfig, TrainConfig, load_job_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHER_CONFIGS = sorted(CLUSTER.glob("*.yaml"))
KUBERAY_MANIFESTS = sorted((CLUSTER / "kuberay").glob("*.yaml"))
DOCS = REPO / "docs" / "cluster.md"
STATE_DIR = PurePosixPath("/home/ray/soma-ray")

# Every variable a recipe may interpolate, with harmless values (tests/test_config.py style).
FAKE_ENV = {
    "SOMA_SECRET_KEY": "00" * 32,
    "S3_BUCKET": "bucket",
    "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_PUBLIC_URL": "http://127.0.0.1:9000/bucket",
    "S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "S3_SECRET_ACCESS_KEY": "very-secret-value-123456",
    "HF_TOKEN": "hf-test-token",
}
SECRET_NAMES = (
    "SOMA_SECRET_KEY", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "HF_TOKEN",
)
# Instance types by GPU count and GPU memory class; a type missing here fails the test.
GPU_INSTANCES: dict[str, tuple[int, int]] = {  # instance type: (GPUs, GB per GPU)
    "g6.xlarge": (1, 24), "g6.2xlarge": (1, 24), "g6.4xlarge": (1, 24),
    "g5.xlarge": (1, 24), "g5.2xlarge": (1, 24), "g5.4xlarge": (1, 24),
    "g2-standard-4": (1, 24), "g2-standard-8": (1, 24), "g2-standard-12": (1, 24),
    "p5.48xlarge": (8, 80), "p5e.48xlarge": (8, 141), "p4de.24xlarge": (8, 80),
    "a3-highgpu-8g": (8, 80), "a3-megagpu-8g": (8, 80), "a2-ultragpu-8g": (8, 80),
}
ROLES = {"scorer": (1, 24), "trainer": (8, 80)}  # role: (GPUs per node, minimum GB per GPU)


# --- helpers ---------------------------------------------------------------------------------

def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def load_manifests(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs), f"{path}: expected Kubernetes objects"
    return docs


def all_manifests() -> list[dict[str, Any]]:
    return [doc for path in KUBERAY_MANIFESTS for doc in load_manifests(path)]


def ray_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    return schema


def provider_type(config: dict[str, Any]) -> str:
    kind: str = config["provider"]["type"]
    return kind


def instance_type(config: dict[str, Any], node: dict[str, Any]) -> str:
    key = "InstanceType" if provider_type(config) == "aws" else "machineType"
    name: str = node["node_config"][key]
    return name


def is_spot(config: dict[str, Any], node: dict[str, Any]) -> bool:
    node_config = node["node_config"]
    if provider_type(config) == "aws":
        return bool(node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot")
    scheduling = node_config.get("scheduling", {})
    return bool(scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible"))


def role_of(node: dict[str, Any]) -> str | None:
    roles = [role for role in ROLES if role in node["resources"]]
    assert len(roles) <= 1, f"a node type advertises several roles: {roles}"
    return roles[0] if roles else None


def worker_types(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: node for name, node in config["available_node_types"].items() if name != config["head_node_type"]}


def parse_kuberay_resources(value: str) -> dict[str, Any]:
    """KubeRay's quoting of `rayStartParams.resources`: '"{\\"scorer\\": 1}"' -> {"scorer": 1}."""
    assert value.startswith('"') and value.endswith('"'), f"not in KubeRay's quoted form: {value!r}"
    parsed = json.loads(value[1:-1].replace('\\"', '"'))
    assert isinstance(parsed, dict)
    return parsed


def containers(pod_template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = pod_template["spec"]["containers"]
    return found


def walk_env(node: Any) -> Iterator[dict[str, Any]]:
    """Every `env:` entry anywhere in a manifest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "env" and isinstance(value, list):
                yield from (entry for entry in value if isinstance(entry, dict))
            else:
                yield from walk_env(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_env(item)


def mount_paths(pod_template: dict[str, Any]) -> list[PurePosixPath]:
    """Container paths backed by a PersistentVolumeClaim."""
    claims = {v["name"] for v in pod_template["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
    return [
        PurePosixPath(m["mountPath"])
        for c in containers(pod_template) for m in c.get("volumeMounts", []) if m["name"] in claims
    ]


def is_under(path: Path | str, folders: list[PurePosixPath]) -> bool:
    return any(PurePosixPath(str(path)).is_relative_to(folder) for folder in folders)


def entrypoint_recipe(entrypoint: str) -> tuple[Path, Path, list[str]]:
    """`python jobs/X.py --config configs/Y.yaml [--set a=b ...]` -> (job, recipe, overrides)."""
    argv = shlex.split(entrypoint)
    assert argv[0] == "python" and argv[1].startswith("jobs/"), entrypoint
    assert argv[2] == "--config", entrypoint
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    return REPO / argv[1], REPO / argv[3], overrides


SECRET_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),                   # AWS access key id
    re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])"),    # 32-byte hex key (wallet)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),                            # Hugging Face token
)
SECRET_ASSIGNMENT = re.compile(
    r"\b(" + "|".join(SECRET_NAMES) + r")\\?[\"']?\s*[:=]\s*\\?[\"']?([^\s\"'\\,}]+)"
)


def find_secrets(text: str) -> list[str]:
    """Secret-looking values: known key formats, or a secret variable given a literal value
    (`$VAR`, `${VAR}`, `...` and `<...>` placeholders are fine)."""
    found = [m.group(0) for pattern in SECRET_PATTERNS for m in pattern.finditer(text)]
    for match in SECRET_ASSIGNMENT.finditer(text):
        value = match.group(2)
        if not value.startswith(("$", "...", "<")):
            found.append(match.group(0))
    return found


def ray_pin() -> Requirement:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [Requirement(dep) for dep in project["dependencies"] if Requirement(dep).name == "ray"]
    assert len(pins) == 1
    return pins[0]


# --- (a) launcher configs ---------------------------------------------------------------------

def test_there_are_launcher_configs_for_aws_and_gcp() -> None:
    assert {p.name for p in LAUNCHER_CONFIGS} == {"aws.yaml", "gcp.yaml"}
    assert {provider_type(load_yaml(p)) for p in LAUNCHER_CONFIGS} == {"aws", "gcp"}


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_launcher_config_passes_rays_validation(path: Path) -> None:
    raw = load_yaml(path)
    jsonschema.validate(raw, ray_schema())          # the raw file against Ray's schema
    prepared = prepare_config(copy.deepcopy(raw))   # merged with the provider's defaults, as `ray up` does
    validate_config(prepared)
    autoscaling = AutoscalingConfig(copy.deepcopy(raw), skip_content_hash=True)  # what autoscaler v2 reads
    types = autoscaling.get_node_type_configs()
    assert set(types) == set(raw["available_node_types"])
    for name, node in raw["available_node_types"].items():
        assert types[name].resources == node["resources"]
        assert types[name].priority == node.get("priority", 0)
    # prepare_config puts setup_commands first on every node, then the role's own.
    assert prepared["head_setup_commands"][: len(raw["setup_commands"])] == raw["setup_commands"]
    assert prepared["worker_setup_commands"][: len(raw["setup_commands"])] == raw["setup_commands"]


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_head_is_on_demand_without_gpus_and_keeps_the_driver_state(path: Path) -> None:
    config = load_yaml(path)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("GPU") == 0
    assert head.get("max_workers", 0) == 0
    assert not is_spot(config, head)
    assert instance_type(config, head) not in GPU_INSTANCES
    assert not any(role in head["resources"] for role in ROLES)
    assert any("--num-gpus=0" in cmd for cmd in config["head_start_ray_commands"])
    # /home/ray/soma-ray is a host folder mounted into the head's container, created by the setup.
    mounts = [opt.split()[-1].split(":") for opt in config["docker"]["head_run_options"] if opt.startswith("-v ")]
    assert [PurePosixPath(inner) for _, inner in mounts] == [STATE_DIR]
    assert any(mounts[0][0] in cmd for cmd in config["initialization_commands"])
    assert any("mkdir -p /home/ray/soma-ray/artifacts" in cmd for cmd in config["head_setup_commands"])
    submit = load_job_config(REPO / "configs" / "submit-testnet.yaml", env=FAKE_ENV)
    train = load_job_config(REPO / "configs" / "train-v1.yaml", env=FAKE_ENV)
    assert isinstance(submit, SubmitConfig) and isinstance(train, TrainConfig)
    assert is_under(submit.driver.state_path, [STATE_DIR])
    assert is_under(train.export.dir, [STATE_DIR]) and is_under(train.driver.state_path, [STATE_DIR])


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_gpu_roles_have_the_right_gpus_and_a_spot_and_an_on_demand_type(path: Path) -> None:
    config = load_yaml(path)
    by_role: dict[str, list[str]] = {role: [] for role in ROLES}
    for name, node in worker_types(config).items():
        role = role_of(node)
        assert role is not None, f"{name} advertises neither scorer nor trainer"
        by_role[role].append(name)
        gpus, gigabytes = GPU_INSTANCES[instance_type(config, node)]
        want_gpus, min_gigabytes = ROLES[role]
        assert gpus == want_gpus and gigabytes >= min_gigabytes, f"{name}: {instance_type(config, node)}"
        assert node["resources"]["GPU"] == gpus
        assert node["resources"][role] == gpus, f"{name}: one `{role}` per GPU"
        assert node.get("min_workers", 0) == 0
        assert 0 < node["max_workers"] <= config["max_workers"]
    assert max(config["available_node_types"][n]["max_workers"] for n in by_role["scorer"]) >= 16
    for role, names in by_role.items():
        nodes = {n: config["available_node_types"][n] for n in names}
        spot = [n for n, node in nodes.items() if is_spot(config, node)]
        on_demand = [n for n, node in nodes.items() if not is_spot(config, node)]
        assert spot and on_demand, f"{role}: needs a spot and an on-demand node type"
        # Same resources, so either type can serve the same request.
        assert len({json.dumps(node["resources"], sort_keys=True) for node in nodes.values()}) == 1
        # Spot first: under autoscaler v2 by priority, under v1 by its name tie-break.
        assert min(nodes[n].get("priority", 0) for n in spot) > max(nodes[n].get("priority", 0) for n in on_demand)
        assert min(spot) > max(on_demand)


def _launches(
    config: dict[str, Any], demand: dict[str, float], count: int, *, unavailable: str | None = None
) -> dict[str, int]:
    """Node types Ray's v2 scheduler launches for `count` bundles of `demand` on an empty cluster."""
    autoscaling = AutoscalingConfig(copy.deepcopy(config), skip_content_hash=True)
    monitor = CloudResourceMonitor()
    if unavailable is not None:   # what the instance manager reports after an allocation timeout
        timeout = InstanceUpdateEvent(new_instance_status=Instance.ALLOCATION_TIMEOUT, instance_type=unavailable)
        monitor.notify([timeout])
    request = SchedulingRequest(
        disable_launch_config_check=True,
        node_type_configs=autoscaling.get_node_type_configs(),
        max_num_nodes=autoscaling.get_max_num_nodes(),
        resource_requests=[ResourceRequestByCount(request=ResourceRequestUtil.make(demand), count=count)],
        cloud_resource_availabilities=monitor.get_resource_availabilities(),
        recoverable_resource_availabilities=monitor.get_recoverable_resource_availabilities(),
    )
    reply = ResourceDemandScheduler().schedule(request)
    launched: dict[str, int] = {}
    for launch in reply.to_launch:
        launched[launch.instance_type] = launched.get(launch.instance_type, 0) + launch.count
    return launched


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_rays_scheduler_launches_spot_first_and_on_demand_when_spot_is_out(path: Path) -> None:
    """What the comments in cluster/*.yaml claim, asked of Ray's own v2 scheduler."""
    config = load_yaml(path)
    actor: dict[str, float] = {"CPU": 2, "GPU": 1, "scorer": 1}        # a scoring actor (configs/submit-testnet.yaml)
    trainer: dict[str, float] = {"CPU": 8, "GPU": 1, "trainer": 1}     # a Ray Train worker (configs/train-v1.yaml)
    assert _launches(config, actor, 4) == {"scorer_spot": 4}
    assert _launches(config, trainer, 8) == {"trainer_spot": 1}
    # Spot at its max_workers: the rest goes to the on-demand type.
    spot_max = config["available_node_types"]["scorer_spot"]["max_workers"]
    assert _launches(config, actor, spot_max + 1) == {"scorer_spot": spot_max, "scorer_ondemand": 1}
    # An allocation timeout lowers the spot type's availability: on-demand is launched instead.
    assert _launches(config, actor, 4, unavailable="scorer_spot") == {"scorer_ondemand": 4}
    assert _launches(config, trainer, 8, unavailable="trainer_spot") == {"trainer_ondemand": 1}
    # An immediate refusal (ALLOCATION_FAILED) does not: documented as needing a config edit.
    monitor = CloudResourceMonitor()
    monitor.notify([InstanceUpdateEvent(new_instance_status=Instance.ALLOCATION_FAILED, instance_type="scorer_spot")])
    assert monitor.get_recoverable_resource_availabilities() == {}


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_setup_installs_torch_then_soma_ray_with_the_pinned_ray(path: Path) -> None:
    config = load_yaml(path)
    setup = config["setup_commands"]
    torch_at = [i for i, cmd in enumerate(setup) if "pip install" in cmd and "torch==2.13.0" in cmd]
    project_at = [i for i, cmd in enumerate(setup) if "pip install" in cmd and "-e /home/ray/soma-ray-src" in cmd]
    assert torch_at and project_at and torch_at[0] < project_at[0]
    assert config["file_mounts"] == {"/home/ray/soma-ray-src": "."}
    image = config["docker"]["image"]
    assert image.startswith("rayproject/ray:") and "-gpu" in image
    assert ray_pin().specifier.contains(image.split(":")[1].split("-")[0]), f"{image} vs {ray_pin()}"
    # Nothing private is copied to the nodes.
    assert {".env", ".venv", ".soma-ray"} <= set(config["rsync_exclude"])
    assert ".gitignore" in config["rsync_filter"]


@pytest.mark.parametrize("path", LAUNCHER_CONFIGS, ids=lambda p: p.name)
def test_launcher_settings_and_placeholders(path: Path) -> None:
    config = load_yaml(path)
    assert config["cluster_name"] and config["idle_timeout_minutes"] > 0 and config["upscaling_speed"] > 0
    assert config["auth"]["ssh_user"]
    provider = config["provider"]
    assert provider["region"] and provider["cache_stopped_nodes"] is False
    if provider["type"] == "gcp":
        assert provider["availability_zone"].startswith(provider["region"]) and provider["project_id"]
    text = path.read_text()
    for line in text.splitlines():
        if re.search(r"^\s*(region|availability_zone|project_id|ImageId):", line):
            assert "# FILL IN" in line, f"{path.name}: placeholder not marked: {line.strip()}"
    # No command of the cluster config hands a secret to the nodes.
    commands = [cmd for key, value in config.items() if key.endswith("_commands") for cmd in value]
    assert commands and not any(name in cmd for cmd in commands for name in SECRET_NAMES)


def test_secret_scanner_finds_planted_secrets() -> None:
    assert find_secrets('SOMA_SECRET_KEY: "' + "ab" * 32 + '"')
    assert find_secrets("aws_access_key_id = AKIAIOSFODNN7EXAMPLE")
    assert find_secrets('{"env_vars": {"HF_TOKEN": "abc123"}}')
    assert find_secrets("--from-literal=S3_SECRET_ACCESS_KEY=wJalrXUtnFEMI")
    assert not find_secrets('{\\"SOMA_SECRET_KEY\\": \\"$SOMA_SECRET_KEY\\", "HF_TOKEN": "..."}')
    assert not find_secrets("secret_key: ${SOMA_SECRET_KEY}\n- name: AWS_SECRET_ACCESS_KEY\n")


def test_no_secret_values_in_cluster_files_or_docs() -> None:
    files = [p for p in CLUSTER.rglob("*") if p.is_file()] + [DOCS, REPO / ".dockerignore"]
    assert len(files) >= 7
    for path in files:
        assert find_secrets(path.read_text()) == [], path


# --- (b) KubeRay manifests --------------------------------------------------------------------

def test_kuberay_manifests_have_the_expected_objects() -> None:
    assert {p.name for p in KUBERAY_MANIFESTS} == {"raycluster.yaml", "rayjob-submitter.yaml", "rayjob-training.yaml"}
    kinds: list[str] = []
    for doc in all_manifests():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] in ("RayCluster", "RayJob"):
            assert doc["apiVersion"] == "ray.io/v1"
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["PersistentVolumeClaim", "PersistentVolumeClaim", "RayCluster", "RayJob", "RayJob"]


def ray_cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    """The shared RayCluster and every RayJob's embedded cluster."""
    specs = [(d["metadata"]["name"], d["spec"]) for d in all_manifests() if d["kind"] == "RayCluster"]
    specs += [(d["metadata"]["name"], d["spec"]["rayClusterSpec"]) for d in all_manifests()
              if d["kind"] == "RayJob" and "rayClusterSpec" in d["spec"]]
    return specs


@pytest.mark.parametrize("name,spec", ray_cluster_specs(), ids=[n for n, _ in ray_cluster_specs()])
def test_ray_cluster_spec_is_valid_and_autoscales(name: str, spec: dict[str, Any]) -> None:
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] > 0
    assert ray_pin().specifier.contains(spec["rayVersion"])
    # Ray's own translation of a RayCluster into autoscaler node types (it runs validate_config).
    derived = _derive_autoscaling_config_from_ray_cr({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert derived["available_node_types"]["headgroup"]["resources"]["GPU"] == 0
    assert head["serviceType"] == "ClusterIP"
    for container in containers(head["template"]):
        assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})
    images = {c["image"] for c in containers(head["template"])}
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"] in ROLES, group["groupName"]
        lo, hi = group["minReplicas"], group["maxReplicas"]
        assert lo == 0 and lo <= group.get("replicas", lo) <= hi
        assert hi == (16 if group["groupName"] == "scorer" else 2)
        gpus, _ = ROLES[group["groupName"]]
        custom = parse_kuberay_resources(group["rayStartParams"]["resources"])
        assert custom == {group["groupName"]: gpus}
        ray_container = containers(group["template"])[0]
        limits = ray_container["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) == gpus == custom[group["groupName"]]
        node_type = derived["available_node_types"][group["groupName"]]
        assert node_type["resources"]["GPU"] == gpus and node_type["resources"][group["groupName"]] == gpus
        assert (node_type["min_workers"], node_type["max_workers"]) == (lo, hi)
        images.add(ray_container["image"])
        # Spot tolerated and preferred, never required: on-demand nodes stay a valid place.
        pod = group["template"]["spec"]
        assert any("spot" in t["key"] for t in pod["tolerations"])
        preferred = pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert any("spot" in json.dumps(p) for p in preferred)
        required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert "spot" not in json.dumps(required) and not any("spot" in k for k in pod.get("nodeSelector", {}))
    assert len(images) == 1 and "soma-ray" in images.pop()


def test_shared_cluster_head_keeps_the_driver_state_on_a_volume() -> None:
    manifests = all_manifests()
    claims = {d["metadata"]["name"] for d in manifests if d["kind"] == "PersistentVolumeClaim"}
    (cluster,) = [d for d in manifests if d["kind"] == "RayCluster"]
    head = cluster["spec"]["headGroupSpec"]["template"]
    volumes = head["spec"]["volumes"]
    assert {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v} <= claims
    assert mount_paths(head) == [STATE_DIR]
    assert head["spec"]["securityContext"]["fsGroup"] == 100   # the image's `ray` user's group


def test_secrets_come_only_from_the_kubernetes_secret() -> None:
    for doc in all_manifests():
        for entry in walk_env(doc):
            if entry["name"].startswith(("S3_", "AWS_")) or entry["name"] in SECRET_NAMES:
                assert "value" not in entry, entry["name"]
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "soma-ray-secrets" and ref["key"] == entry["name"]
        if doc["kind"] == "RayJob":
            runtime_env = yaml.safe_load(doc["spec"]["runtimeEnvYAML"])
            assert not set(runtime_env.get("env_vars", {})) & set(SECRET_NAMES)
    # The wallet key reaches the shared cluster's head only.
    (cluster,) = [d for d in all_manifests() if d["kind"] == "RayCluster"]
    head_env = {e["name"] for e in walk_env(cluster["spec"]["headGroupSpec"])}
    worker_env = {e["name"] for e in walk_env(cluster["spec"]["workerGroupSpecs"])}
    assert "SOMA_SECRET_KEY" in head_env and "SOMA_SECRET_KEY" not in worker_env


def rayjobs() -> list[dict[str, Any]]:
    return [d for d in all_manifests() if d["kind"] == "RayJob"]


@pytest.mark.parametrize("job", rayjobs(), ids=[j["metadata"]["name"] for j in rayjobs()])
def test_rayjob_runs_an_existing_job_with_a_recipe_that_loads(job: dict[str, Any]) -> None:
    spec = job["spec"]
    script, recipe, overrides = entrypoint_recipe(spec["entrypoint"])
    assert script.is_file() and recipe.is_file()
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"] == "/opt/soma-ray"          # the repository inside the image
    env = {**FAKE_ENV, **runtime_env.get("env_vars", {})}
    config = load_job_config(recipe, overrides, env=env)
    assert ("clusterSelector" in spec) != ("rayClusterSpec" in spec)
    if "clusterSelector" in spec:
        (cluster,) = [d for d in all_manifests() if d["kind"] == "RayCluster"]
        assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        assert spec["shutdownAfterJobFinishes"] is False
        assert spec.get("backoffLimit", 0) == 0   # KubeRay rejects backoffLimit with clusterSelector
        head = cluster["spec"]["headGroupSpec"]["template"]
    else:
        assert spec["shutdownAfterJobFinishes"] is True
        head = spec["rayClusterSpec"]["headGroupSpec"]["template"]
    # Anything the job keeps lands on the head's volume.
    if isinstance(config, SubmitConfig):
        assert is_under(config.driver.state_path, mount_paths(head))
    elif isinstance(config, TrainConfig):
        assert is_under(config.export.dir, mount_paths(head))
    else:
        pytest.fail(f"unexpected job kind {config.kind}")


def test_training_rayjob_retries_and_resumes() -> None:
    (job,) = [j for j in rayjobs() if j["spec"]["entrypoint"].startswith("python jobs/train.py")]
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1
    _, recipe, overrides = entrypoint_recipe(spec["entrypoint"])
    env = {**FAKE_ENV, **yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]}
    config = load_job_config(recipe, overrides, env=env)
    assert isinstance(config, TrainConfig)
    assert config.training.name == "v1-main"                      # the same run on every attempt
    assert config.training.storage_path.startswith("s3://")       # checkpoints outlive each attempt's cluster
    (group,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert group["groupName"] == "trainer"
    # Every worker asks {GPU: 1, trainer: 1}, and they fit on the group's GPUs.
    assert config.training.resources_per_worker == {"trainer": 1} and config.training.gpus_per_worker == 1
    assert config.training.num_workers <= ROLES["trainer"][0] * group["maxReplicas"]


# --- (c) Dockerfile -----------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (CLUSTER / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_builds_on_cuda_and_installs_torch_before_the_project() -> None:
    steps = dockerfile_instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("nvidia/cuda:")
    runs = [(i, arg) for i, (op, arg) in enumerate(steps) if op == "RUN"]
    torch_at = [i for i, arg in runs if "pip install" in arg and "torch==2.13.0" in arg]
    project_at = [i for i, arg in runs if re.search(r"pip install\s+(-e\s+)?/opt/soma-ray\b", arg)]
    copy_at = [i for i, (op, arg) in enumerate(steps) if op == "COPY" and arg.split()[-2:] == [".", "/opt/soma-ray"]]
    assert torch_at and project_at and copy_at
    assert torch_at[0] < copy_at[0] < project_at[0]
    assert any("python3.11" in arg for _, arg in runs)
    assert any(re.search(r"useradd .*--home-dir /home/ray .*\bray$", arg) for _, arg in runs)
    assert ("WORKDIR", "/opt/soma-ray") in steps
    assert not any(op in ("ENV", "ARG") and any(name in arg for name in SECRET_NAMES) for op, arg in steps)
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".soma-ray", ".git"} <= ignored


# --- (d) docs and references ---------------------------------------------------------------------

def referenced(pattern: str) -> set[str]:
    texts = [DOCS.read_text()] + [p.read_text() for p in CLUSTER.rglob("*") if p.is_file()]
    return {m for text in texts for m in re.findall(pattern, text)}


def test_every_recipe_and_job_named_exists_and_loads() -> None:
    recipes = referenced(r"\bconfigs/[\w.-]+\.yaml\b")
    jobs = referenced(r"\bjobs/[\w-]+\.py\b")
    assert {"configs/submit-testnet.yaml", "configs/train-v1.yaml", "configs/sweep-v1.yaml"} <= recipes
    assert {"jobs/submit_data.py", "jobs/train.py", "jobs/sweep.py", "jobs/driver.py"} <= jobs
    for name in sorted(jobs):
        assert (REPO / name).is_file(), name
    for name in sorted(recipes):
        assert (REPO / name).is_file(), name
        load_job_config(REPO / name, env=FAKE_ENV)


def test_docs_cover_the_jobs_the_credentials_and_tear_down() -> None:
    text = DOCS.read_text()
    for needle in (
        "ray up -y cluster/aws.yaml", "ray up -y cluster/gcp.yaml", "helm install kuberay-operator",
        "kubectl apply -f cluster/kuberay/raycluster.yaml", "kubectl create secret generic soma-ray-secrets",
        "ray dashboard cluster/aws.yaml", "ray down -y cluster/aws.yaml", "--once",
        "ray metrics launch-prometheus", "ray job logs -f",
    ):
        assert needle in text, needle
    for name in (*SECRET_NAMES, "S3_BUCKET", "S3_ENDPOINT_URL", "S3_PUBLIC_URL", "TRAIN_STORAGE"):
        assert name in text, name
    # Every `ray job submit` shown passes excludes and only $VARIABLE references.
    submits = [line for line in text.splitlines() if line.startswith("ray job submit")]
    assert len(submits) >= 4
    for line in submits:
        assert '\\"excludes\\": [\\".env\\", \\".venv\\", \\".soma-ray\\"' in line
        assert "--working-dir ." in line and " -- python jobs/" in line
    readme = (CLUSTER / "README.md").read_text()
    assert "docs/cluster.md" in readme
