"""Shared test set-up: headless plotting, a per-session cache, paths to the shared data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

# Tests never write into a user's ~/.cache/memsim: unless the caller chose a cache (CI does),
# each session gets its own (the digits model then trains once per session, in seconds).
os.environ.setdefault("MEMSIM_CACHE", tempfile.mkdtemp(prefix="memsim-test-cache-"))

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MEMSIM_SHARED", REPO.parent / "shared"))
CIFAR_ROOT = SHARED / "data" / "cifar10-jpeg"
CHECKPOINTS = SHARED / "checkpoints"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    if not (CIFAR_ROOT / "test").is_dir():
        pytest.skip(f"offline CIFAR-10 copy not found at {CIFAR_ROOT}")
    return CIFAR_ROOT


@pytest.fixture(scope="session")
def checkpoint_dir() -> Path:
    if not CHECKPOINTS.is_dir():
        pytest.skip(f"reference checkpoints not found at {CHECKPOINTS}")
    return CHECKPOINTS


@pytest.fixture
def read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write to (root ignores mode bits: use sysfs then)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return folder
    if Path("/sys/kernel").is_dir():
        return Path("/sys/kernel")
    pytest.skip("cannot make a read-only folder here")


# Test tiers (README, "Tests"): every test gets one tier marker, from its module unless it
# carries one itself, so `-m unit`, `-m statistical`, ... select a tier. `slow` is separate and
# left out of the README's command.
TIERS = ("unit", "contract", "statistical", "integration")
_MODULE_TIERS = {
    "statistical": (
        "test_noise_stats",
        "test_noise_ladder",
        "test_noise_blocks",
        "test_noise_channel",
    ),
    "contract": ("test_policies_contract", "test_timing_policies", "test_workloads_base"),
    "integration": ("test_experiment", "test_sweep", "test_bnn_study", "test_golden", "test_cli"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(t) for t in TIERS):
            continue
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        tier = next((t for t, mods in _MODULE_TIERS.items() if module.startswith(mods)), "unit")
        item.add_marker(getattr(pytest.mark, tier))
