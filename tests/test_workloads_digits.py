"""The embedded default workload: ships its weights; another recipe trains on first use, is
cached, accurate and deterministic."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workloads import DEFAULT_WORKLOAD, digits, get_workload
from workloads.checkpoints import save_checkpoint
from workloads.train import accuracy, train_model


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """An empty cache folder, no in-process weights and no shipped file, so the first load
    really trains."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMSIM_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(digits, "_TRAINED", {})
        mp.setattr(digits, "SHIPPED", tmp_path_factory.mktemp("shipped") / "digits.pt")
        yield


def test_default_workload_is_digits():
    assert DEFAULT_WORKLOAD == "digits"


def test_fixed_split_shapes_and_classes():
    workload = get_workload("digits")
    x_train, y_train = workload.dataset("train")
    x_test, y_test = workload.dataset("test")
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    assert x_test.dtype == torch.float32 and y_test.dtype == torch.int64
    assert torch.bincount(y_test).min() >= 35  # stratified: about 36 per class
    assert abs(float(x_train.mean())) < 1e-5 and abs(float(x_train.std()) - 1) < 1e-3


def test_the_default_weights_are_the_shipped_ones_for_this_recipe(monkeypatch):
    """Trained on first use, the weights differed between processors (AVX2 against AVX-512),
    and with them the golden run and the lab key: the default ones ship and load untrained."""
    payload = torch.load(digits.SHIPPED, weights_only=True)
    assert payload["recipe_hash"] == digits.recipe_hash(), (
        "the shipped digits weights are of another recipe: run workloads.digits."
        "write_shipped_weights(), then regenerate the golden run and the lab key"
    )
    monkeypatch.setattr(digits, "_TRAINED", {})
    monkeypatch.setattr(digits, "train_model", _no_training)
    model = get_workload("digits").load_model()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, payload["state_dict"][name]), name
    x, y = get_workload("digits").dataset("test")
    assert abs(accuracy(model, x, y) - payload["test_acc"]) <= 1 / len(y)  # one image at most


def test_shipped_weights_of_another_recipe_are_not_used(monkeypatch, tmp_path):
    state = torch.load(digits.SHIPPED, weights_only=True)["state_dict"]
    save_checkpoint(tmp_path / "digits.pt", state, arch=digits.ARCH, recipe_hash="0" * 16)
    monkeypatch.setattr(digits, "SHIPPED", tmp_path / "digits.pt")
    monkeypatch.setattr(digits, "_TRAINED", {})
    monkeypatch.setattr(digits, "train_model", _no_training)
    with pytest.raises(AssertionError, match="trains"):
        get_workload("digits", cache=False).load_model()


def _no_training(*args, **kwargs):
    raise AssertionError("trains")


def test_trains_on_first_use_then_loads_identical_weights_from_cache(fresh_cache):
    workload = get_workload("digits")
    path = workload.cache_path()
    assert not path.exists()
    first = workload.load_model()
    assert path.is_file() and not first.training
    x, y = workload.dataset("test")
    assert accuracy(first, x, y) >= 0.95
    digits._TRAINED.clear()  # a new process: weights come from disk, not from training
    second = get_workload("digits").load_model()
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.load(path, weights_only=True)["test_acc"] >= 0.95


def test_training_is_deterministic():
    short = dataclasses.replace(digits.RECIPE, epochs=2)
    workload = get_workload("digits", cache=False)
    a, _ = train_model(workload, short, progress=False)
    b, _ = train_model(workload, short, progress=False)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name


def test_recipe_hash_changes_with_the_recipe():
    assert digits.recipe_hash() != digits.recipe_hash(dataclasses.replace(digits.RECIPE, epochs=21))


_TRAIN_AND_HASH = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from workloads.digits import RECIPE, DigitsWorkload
from workloads.train import train_model
model, _ = train_model(DigitsWorkload(cache=False), RECIPE, progress=False)
print(hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest())
print(torch.get_num_threads())
"""


def test_default_weights_do_not_depend_on_the_thread_count():
    """CPU float reductions are split by thread: one thread trained other default weights than
    two, so the default experiment, the golden run and the lab key moved with a machine's
    core count. The digits workload trains with ``train_threads`` and restores the count (the
    default weights now ship; a recipe trained on first use still must not move)."""
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", _TRAIN_AND_HASH, str(n)],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout.split()
        for n in (1, 3)
    ]  # fmt: skip
    assert runs[0][0] == runs[1][0]
    assert [r[1] for r in runs] == ["1", "3"]  # the caller's count is back after training
