"""Python, the installed packages against soma-ray's declared ranges, and torch against the GPU."""

from __future__ import annotations

import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from soma_ray.doctor.result import Check, fail, info, ok, problem

DISTRIBUTION = "soma-ray"


def python_check(version: tuple[int, int, int] | None = None) -> Check:
    current = version or (sys.version_info.major, sys.version_info.minor, sys.version_info.micro)
    text = ".".join(map(str, current))
    try:
        wanted = metadata.metadata(DISTRIBUTION)["Requires-Python"] or ">=3.11"
    except metadata.PackageNotFoundError:
        wanted = ">=3.11"
    if text not in SpecifierSet(wanted):
        return fail("python", f"Python {text} does not satisfy {wanted}; make the virtual environment with python3.11 or newer")
    return ok("python", f"Python {text} ({platform.python_implementation()}, {sys.executable})")


def package_checks(requirements: list[str] | None = None) -> list[Check]:
    """One line per declared dependency that is missing or out of range; one ok line otherwise."""
    if requirements is None:
        try:
            requirements = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            return [fail("packages", "soma-ray is not installed; run `pip install -e .` in the repository")]
    bad: list[Check] = []
    checked = 0
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra (test tools) or another platform's
        checked += 1
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            bad.append(fail("packages", f"{requirement.name} is not installed; run `pip install '{requirement}'`"))
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            bad.append(fail(
                "packages",
                f"{requirement.name} {installed} is outside {requirement.specifier}; run `pip install '{requirement}'`",
            ))
    return bad or [ok("packages", f"{checked} dependencies installed within their declared ranges")]


def machine_has_gpu() -> bool:
    """An NVIDIA GPU on this machine, whatever torch thinks."""
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def torch_check(*, needed: bool, has_gpu: bool | None = None) -> Check:
    """The torch build against the GPU: a CUDA wheel where there is a GPU, and CUDA usable."""
    gpu_here = machine_has_gpu() if has_gpu is None else has_gpu
    try:
        import torch
    except ImportError:
        return fail("torch", "torch is not installed; run `pip install torch==2.13.0` (before soma-ray)")
    built_for = torch.version.cuda
    if gpu_here and built_for is None:
        return problem(
            "torch", f"torch {torch.__version__} is a CPU build but this machine has an NVIDIA GPU; "
            "reinstall torch's CUDA build for this driver (https://pytorch.org/get-started/locally/)",
            needed=needed,
        )
    if gpu_here and not torch.cuda.is_available():
        return problem(
            "torch", f"torch {torch.__version__} is built for CUDA {built_for} but cannot use the GPU; "
            "check the driver (`nvidia-smi`) supports that CUDA version, or install a wheel for an older CUDA",
            needed=True,
        )
    if gpu_here:
        name = torch.cuda.get_device_name(0)
        return ok("torch", f"torch {torch.__version__} (CUDA {built_for}) sees {torch.cuda.device_count()} GPU(s): {name}")
    if needed:
        return info("torch", f"torch {torch.__version__} ({'CUDA ' + built_for if built_for else 'CPU build'}); "
                    "no GPU on this machine: the recipe's GPUs must be on the Ray cluster's nodes")
    return ok("torch", f"torch {torch.__version__} ({'CUDA ' + built_for if built_for else 'CPU build'}), no GPU needed")

