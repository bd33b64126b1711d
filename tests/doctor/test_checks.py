"""Each group of doctor checks on real inputs: files, sockets, the served localnet over gRPC, plain
dicts of Ray resources. No Ray is started here (tests/cluster/test_doctor_resources.py does)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from soma_sdk import Keypair

from soma_ray.chain.config import ChainConfig, WalletConfig
from soma_ray.chain.served import LocalnetServer, LocalnetSettings
from soma_ray.chain.wallet import key_format, keypair_from_secret
from soma_ray.cluster_reach import BOOTSTRAP_CONFIG, bootstrap_reach, reach_of_cluster_config
from soma_ray.config import load_job_config
from soma_ray.doctor.chain import chain_checks
from soma_ray.doctor.disk import disk_check
from soma_ray.doctor.env_file import env_checks
from soma_ray.doctor.huggingface import hub_checks
from soma_ray.doctor.needs import needs_of
from soma_ray.doctor.ports import port_checks
from soma_ray.doctor.python_env import package_checks, python_check, torch_check
from soma_ray.doctor.ray_cluster import ray_checks, recorded_address, resource_checks
from soma_ray.doctor.result import Level
from soma_ray.doctor.wallet import wallet_check
from soma_ray.localnet import scorer_factory
from soma_ray.protocol.architecture import v1_architecture
from tests.chain.served.kit import served_settings

REPO = Path(__file__).resolve().parents[2]
MNEMONIC = "abandon " * 11 + "about"


@pytest.fixture(autouse=True)
def no_stored_hub_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's `hf auth login` must not change what these tests see."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-token"))


def test_resources_the_cluster_lacks_fail_by_name() -> None:
    total = {"CPU": 16.0, "GPU": 2.0, "scorer": 1.0}
    short = resource_checks(total, {"GPU": 2.0, "scorer": 2.0}, "cluster")
    assert [c.level for c in short] == [Level.FAIL]
    assert "scorer: 2 at once, the cluster has 1" in short[0].message and "scoring nodes" in short[0].message
    trainer = resource_checks(total, {"trainer": 1.0}, "cluster")
    assert "trainer: 1 at once, the cluster has 0" in trainer[0].message
    enough = resource_checks(total, {"GPU": 1.0, "scorer": 1.0}, "cluster")
    assert enough[0].level is Level.OK and "scorer 1" in enough[0].message


def test_an_autoscaling_cluster_short_now_waits_unless_its_node_types_fall_short() -> None:
    """A fresh cluster from cluster/aws.yaml has no scorer or trainer node until a job asks (their
    min_workers is 0): within the autoscaler's reach that is worth knowing, not a failure."""
    now = {"CPU": 8.0}
    most = {"CPU": 520.0, "GPU": 32.0, "scorer": 16.0, "trainer": 16.0}
    grows = resource_checks(now, {"GPU": 4.0, "scorer": 4.0}, "cluster", most)
    assert [c.level for c in grows] == [Level.OK, Level.INFO, Level.INFO], grows
    assert "once scaled up" in grows[0].message
    assert "scorer: 4 at once, the cluster has 0 now and its autoscaler may add up to 16" in grows[2].message
    beyond = resource_checks(now, {"GPU": 4.0, "trainer": 24.0}, "cluster", most)
    assert [c.level for c in beyond] == [Level.INFO, Level.FAIL], beyond  # the GPUs will come; the trainers won't
    assert "trainer: 24 at once, the cluster has 0 (its autoscaler's node types reach 16)" in beyond[1].message
    assert [c.level for c in resource_checks(now, {"scorer": 1.0}, "cluster", None)] == [Level.FAIL]


def test_the_reach_of_our_cluster_configs_as_the_head_node_holds_them(tmp_path: Path) -> None:
    """`ray up` leaves the cluster config on the head as ~/ray_bootstrap_config.yaml."""
    assert bootstrap_reach(tmp_path) is None  # not a head node of `ray up`
    (tmp_path / BOOTSTRAP_CONFIG).write_text((REPO / "cluster" / "aws.yaml").read_text())
    aws = bootstrap_reach(tmp_path)
    assert aws is not None
    # 18 workers at most in all (the cluster's max_workers), each type up to its own: 16 + 2 scorer
    # nodes, or 4 trainer nodes of 8 GPUs and 14 scorer nodes of 1
    assert (aws["scorer"], aws["trainer"], aws["GPU"]) == (18.0, 32.0, 4 * 8 + 14.0)
    assert aws["CPU"] == 8 + 4 * 192 + 14 * 8  # the head once, then the workers richest in CPUs
    uncapped = reach_of_cluster_config({**yaml.safe_load((REPO / "cluster" / "aws.yaml").read_text()),
                                        "max_workers": None})
    assert uncapped["scorer"] == 32.0  # each type at its max_workers
    (tmp_path / BOOTSTRAP_CONFIG).write_text("available_node_types: [\n")
    assert bootstrap_reach(tmp_path) is None  # unreadable: nothing known, as without one
    gcp = reach_of_cluster_config(yaml.safe_load((REPO / "cluster" / "gcp.yaml").read_text()))
    env = {n: "x" for n in ("SOMA_SECRET_KEY", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")}
    for recipe in ("submit-testnet.yaml", "train-v1.yaml"):  # a fresh cluster (only its head) runs both, once grown
        wanted = needs_of(load_job_config(REPO / "configs" / recipe, env=env)).ray_resources
        for reach in (aws, gcp):
            checks = resource_checks({"CPU": 8.0}, wanted, "cluster", reach)
            assert checks[0].level is Level.OK and all(c.level is not Level.FAIL for c in checks), (recipe, checks)


def test_no_cluster_is_information_unless_the_recipe_needs_custom_resources(tmp_path: Path) -> None:
    environ = {"RAY_TMPDIR": str(tmp_path)}
    assert recorded_address(environ)[0] is None
    assert ray_checks({}, needed=True, environ=environ)[0].level is Level.INFO
    custom = ray_checks({"scorer": 1.0}, needed=True, environ=environ)[0]
    assert custom.level is Level.FAIL and "a local Ray has none of scorer: 1" in custom.message
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")
    assert recorded_address(environ)[0] == "127.0.0.1:1"
    stale = ray_checks({}, needed=True, environ=environ)[0]  # recorded, but nothing listens there
    assert stale.level is Level.FAIL and "does not answer" in stale.message
    assert recorded_address({"RAY_ADDRESS": "10.0.0.1:6379"}) == ("10.0.0.1:6379", "RAY_ADDRESS")


def test_needs_follow_the_recipe() -> None:
    env = {n: "x" for n in ("SOMA_SECRET_KEY", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")}
    submit = needs_of(load_job_config(REPO / "configs" / "submit-testnet.yaml", env=env))
    assert submit.ray and submit.wallet and submit.s3 and submit.gpu and submit.hub_gated
    assert submit.ray_resources == {"GPU": 1.0, "scorer": 1.0}
    assert submit.hub_dataset == "bigcode/the-stack-v2-dedup"
    train = needs_of(load_job_config(REPO / "configs" / "train-v1.yaml", env=env))
    assert train.ray_resources.get("trainer", 0) >= 1
    run = needs_of(load_job_config(REPO / "configs" / "sim.yaml", env=env))
    assert not (run.ray or run.wallet or run.s3 or run.hub_dataset)


def test_key_formats_are_named_and_mnemonics_load() -> None:
    keypair = Keypair.generate()
    assert key_format(keypair.to_secret_key()) == "hex"
    assert key_format(keypair.to_encoded()) == "bech32"
    assert key_format(MNEMONIC) == "mnemonic"
    assert key_format("hunter2") == "unknown"
    assert keypair_from_secret(MNEMONIC, "test").address() == Keypair.from_mnemonic(MNEMONIC).address()


def test_wallet_check_names_format_and_mode_never_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    keypair = Keypair.generate()
    key_file.write_text(keypair.to_encoded() + "\n")
    key_file.chmod(0o600)
    good = wallet_check(WalletConfig(key_file=key_file), needed=True)
    assert good.check.level is Level.OK and "bech32 secret key" in good.check.message and good.address
    key_file.chmod(0o644)
    loose = wallet_check(WalletConfig(key_file=key_file), needed=True).check
    assert loose.level is Level.FAIL and f"chmod 600 {key_file}" in loose.message
    from_env = wallet_check(WalletConfig(key_file=key_file, secret_key=SecretStr(MNEMONIC)), needed=True)
    assert from_env.check.level is Level.OK and from_env.check.message.startswith("mnemonic from wallet.secret_key")
    missing = wallet_check(WalletConfig(key_file=tmp_path / "none.key"), needed=False).check
    assert missing.level is Level.INFO and "soma-ray wallet new" in missing.message
    for garbage in ("a" * 63, "foo " * 12, "abandon " * 12):  # not hex; unknown words; a bad checksum
        bad = wallet_check(WalletConfig(secret_key=SecretStr(garbage)), needed=True).check
        assert bad.level is Level.FAIL and garbage.strip() not in bad.message


def test_dotenv_pitfalls(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("S3_ENDPOINT_URL=https://s3.example.com\nS3_PUBLIC_URL=https://s3.example.com/b\n")
    dotenv.chmod(0o600)
    same_host = env_checks(dotenv, {}, s3_needed=True)
    assert [c.level for c in same_host] == [Level.WARN] and "points at the S3 API endpoint" in same_host[0].message
    dotenv.write_text("S3_ENDPOINT_URL=https://s3.example.com\nS3_PUBLIC_URL=https://pub-1.r2.dev\n")
    assert [c.level for c in env_checks(dotenv, {}, s3_needed=True)] == [Level.OK]
    # the environment wins over .env, as in config loading
    overridden = env_checks(dotenv, {"S3_ENDPOINT_URL": "s3.example.com"}, s3_needed=False)
    assert overridden[0].level is Level.WARN and "S3_ENDPOINT_URL (the environment)" in overridden[0].message


async def test_served_localnet_api_version_balance_and_scoring_health(tmp_path: Path) -> None:
    settings = served_settings(tmp_path)
    async with LocalnetServer(settings, scorer_factory=scorer_factory(settings)) as server:
        urls = server.urls
        keypair = Keypair.generate()
        await server.sim.faucet(keypair.address())
        config = ChainConfig(network=urls.rpc_url, scoring_url=urls.scoring_url)
        checks = await chain_checks(config, keypair.address(), needed=True, funds_needed=True)
        by_name = {c.name: c for c in checks}
        assert by_name["chain"].level is Level.OK, checks
        assert "server soma-ray-localnet/0.1.19, API version matches soma-sdk" in by_name["chain"].message
        assert by_name["balance"].level is Level.OK and "2.000000000 SOMA" in by_name["balance"].message
        assert by_name["scoring service"].level is Level.OK
        empty = await chain_checks(config, Keypair.generate().address(), needed=True, funds_needed=True)
        assert [c.level for c in empty if c.name == "balance"] == [Level.FAIL]
    gone = await chain_checks(ChainConfig(network=urls.rpc_url), None, needed=True, funds_needed=False)
    assert [c.level for c in gone] == [Level.FAIL] and urls.rpc_url.split("//")[1] in gone[0].message


def test_ports_in_use_fail_only_for_serving() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        settings = LocalnetSettings(rpc_port=taken, faucet_port=0, scoring_port=0, admin_port=0, blob_port=0)
        serving = port_checks(settings, serving=True)
        assert serving[0].level is Level.FAIL and f"rpc {taken}" in serving[0].message
        assert port_checks(settings, serving=False)[0].level is Level.INFO
    assert port_checks(settings, serving=True)[0].level is Level.OK


def test_disk_room_is_counted_in_models() -> None:
    v1 = v1_architecture()
    assert 4.7e9 < v1.approx_weights_bytes() < 4.9e9  # ~4.84 GB of float32 weights (protocol.md §1.4)
    assert disk_check(Path("/tmp/cache"), v1, free_bytes=3 * 10**9).level is Level.FAIL
    assert disk_check(Path("/tmp/cache"), v1, free_bytes=12 * 10**9).level is Level.WARN
    assert disk_check(Path("/tmp/cache"), v1, free_bytes=100 * 10**9).level is Level.OK


def test_packages_python_and_torch() -> None:
    assert package_checks(["pydantic>=2"])[0].level is Level.OK
    missing = package_checks(["no-such-package-soma>=1"])[0]
    assert missing.level is Level.FAIL and "pip install 'no-such-package-soma>=1'" in missing.message
    assert package_checks(["pydantic<1"])[0].level is Level.FAIL
    assert package_checks(['pydantic<1; extra == "test"'])[0].level is Level.OK  # extras are not required
    assert python_check((3, 10, 0)).level is Level.FAIL
    assert python_check().level is Level.OK
    import torch

    on_gpu_machine = torch_check(needed=True, has_gpu=True)
    if torch.version.cuda is None:  # this CPU build on a GPU machine is the wrong wheel
        assert on_gpu_machine.level is Level.FAIL and "CPU build" in on_gpu_machine.message
    assert torch_check(needed=False, has_gpu=False).level is Level.OK


def test_hub_checks_without_the_network() -> None:
    gated = hub_checks("bigcode/the-stack-v2-dedup", gated=True, environ={})
    assert gated[0].level is Level.FAIL and "HF_TOKEN is not set" in gated[0].message
    only_dotenv = hub_checks("org/set", gated=False, dotenv_names=frozenset({"HF_TOKEN"}), environ={})
    assert only_dotenv[0].level is Level.FAIL and "export HF_TOKEN" in only_dotenv[0].message
    offline = hub_checks("org/set", gated=False, environ={"HF_TOKEN": "hf_secret_value", "HF_HUB_OFFLINE": "1"})
    assert offline[0].level is Level.INFO and "hf_secret_value" not in offline[0].message


def test_a_stored_login_counts_as_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    (tmp_path / "token").write_text("hf_stored_secret_0123\n")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:1")
    checks = hub_checks("bigcode/the-stack-v2-dedup", gated=True, environ={})
    assert "HF_TOKEN is not set" not in checks[0].message  # it went on to ask the (unreachable) Hub
    assert checks[0].level is Level.FAIL and "cannot reach the Hub" in checks[0].message
    assert "hf_stored_secret_0123" not in checks[0].message


@pytest.mark.parametrize("token", [None, "hf_secret_value_x"])
def test_hub_check_of_an_unreachable_hub_is_one_line(token: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:1")
    environ = {"HF_TOKEN": token} if token else {}
    checks = hub_checks("org/set", gated=False, environ=environ)
    assert checks[-1].level is Level.FAIL and "\n" not in checks[-1].message
    assert "hf_secret_value_x" not in " ".join(c.message for c in checks)
