"""The binarized digits networks of the shipped configs and of lab 5 ship (workloads/weights):
a study with their recipe copies them instead of training, and a shipped file is only used for
the network and recipe it was trained for."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch

from memsim.studies import bnn as study
from workloads import bnn
from workloads.checkpoints import load_checkpoint

LAB5 = Path(__file__).resolve().parent.parent / "configs" / "labs" / "lab5_bnn.toml"
CONFIGS = ["bnn/digits", "bnn/digits_2t2r", "bnn/digits_compliance", str(LAB5)]
SHIPPED = sorted(bnn.SHIPPED_DIR.glob("bnn_*.pt"))


def _no_training(*args, **kwargs):
    raise AssertionError("trained a network that ships")


def _fake_training(workload, recipe, **kwargs):
    return workload.build_model(), 0


@pytest.fixture
def lab5():
    config = study.load_study_config(LAB5)
    return config, study._workload(config.workload, config.workload_options)


@pytest.mark.parametrize("name", CONFIGS)
def test_both_networks_ship_with_the_recipe_they_are_named_for(name):
    config = study.load_study_config(name)
    workload = study._workload(config.workload, config.workload_options)
    paths = [workload.shipped_weights(config.recipe(n)) for n in study.NETWORKS]
    assert None not in paths
    assert paths[0] != paths[1]  # the plain and the error-aware recipe differ


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_network_has_the_test_accuracy_it_was_shipped_with(path):
    payload = load_checkpoint(path)
    workload = bnn.BNNDigitsWorkload(cache=False)
    model = workload.load_model(path)
    x, y = workload.dataset("test")
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    assert acc == pytest.approx(payload["test_acc"], abs=1e-6)
    assert acc > 0.95  # trained, not an initialisation (chance is 0.1)


def test_a_study_copies_shipped_networks_into_its_folder_without_training(
    lab5, tmp_path, monkeypatch
):
    config, workload = lab5
    monkeypatch.setattr(bnn, "train_model", _no_training)
    paths = study.networks(config, workload, tmp_path)
    for name in study.NETWORKS:
        shipped = workload.shipped_weights(config.recipe(name))
        assert paths[name] == tmp_path / f"{name}.pt"
        assert paths[name].read_bytes() == shipped.read_bytes()


def test_a_folder_with_its_own_network_keeps_it_and_says_it_is_not_the_shipped_one(
    lab5, tmp_path, monkeypatch, caplog
):
    """A folder from before its networks shipped resumes with its own (its points came from
    them), with a warning naming the file."""
    config, workload = lab5
    monkeypatch.setattr(bnn, "train_model", _no_training)
    own = tmp_path / "plain.pt"
    bnn.save_bnn(own, workload.build_model(), workload, config.recipe("plain"))
    before = own.read_bytes()
    with caplog.at_level(logging.WARNING, logger=study.__name__):
        study.networks(config, workload, tmp_path)
    assert own.read_bytes() == before
    assert [str(own) in r.getMessage() for r in caplog.records] == [True]
    aware = workload.shipped_weights(config.recipe("error_aware"))
    assert (tmp_path / "error_aware.pt").read_bytes() == aware.read_bytes()


def test_another_recipe_has_no_shipped_network_and_is_trained(lab5, tmp_path, monkeypatch):
    config, workload = lab5
    other = dataclasses.replace(config.train, epochs=config.train.epochs + 1)
    assert workload.shipped_weights(other) is None
    calls = []

    def fake_train(workload, recipe, **kwargs):
        calls.append(recipe)
        return _fake_training(workload, recipe)

    monkeypatch.setattr(bnn, "train_model", fake_train)
    config = dataclasses.replace(config, train=other)
    study.networks(config, workload, tmp_path)
    assert [r.weight_noise_p for r in calls] == [0.0, config.train_ber]


@pytest.mark.parametrize("wrong", ["recipe", "weights_key"])
def test_a_shipped_file_for_another_network_or_recipe_than_its_name_says_is_refused(
    wrong, lab5, tmp_path, monkeypatch
):
    config, workload = lab5
    monkeypatch.setattr(bnn, "SHIPPED_DIR", tmp_path)
    plain, aware = config.recipe("plain"), config.recipe("error_aware")
    recipe, key = (aware, workload.weights_key(plain))
    if wrong == "weights_key":
        recipe, key = plain, workload.weights_key(aware)
    path = workload.shipped_path(plain)
    bnn.save_bnn(path, workload.build_model(), workload, recipe, weights_key=key)
    with pytest.raises(ValueError, match=path.name):
        workload.shipped_weights(plain)


@pytest.mark.parametrize("train_ber", [0.0, 0.04])
def test_the_default_bnn_digits_networks_are_the_shipped_ones(train_ber, monkeypatch):
    monkeypatch.setattr(bnn, "train_model", _no_training)
    workload = bnn.BNNDigitsWorkload(train_ber=train_ber, cache=False)
    shipped = workload.shipped_weights(workload.default_recipe())
    assert shipped is not None
    state = load_checkpoint(shipped)["state_dict"]
    loaded = workload.load_model().state_dict()
    assert all(torch.equal(loaded[k], v.float()) for k, v in state.items())


def test_the_default_network_loads_shipped_weights_before_training(tmp_path, monkeypatch):
    """BNNWorkload.load_model() takes the shipped file of its default recipe, untrained."""
    monkeypatch.setattr(bnn, "SHIPPED_DIR", tmp_path)
    monkeypatch.setattr(bnn, "train_model", _no_training)
    workload = bnn.BNNDigitsWorkload(cache=False)
    recipe = workload.default_recipe()
    torch.manual_seed(0)
    model = workload.build_model()
    key = workload.weights_key(recipe)
    bnn.save_bnn(workload.shipped_path(recipe), model, workload, recipe, weights_key=key)
    loaded = workload.load_model()
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value.float()), name


def test_ship_networks_writes_both_networks_a_study_then_finds(lab5, tmp_path, monkeypatch):
    config, workload = lab5
    monkeypatch.setattr(bnn, "SHIPPED_DIR", tmp_path)
    monkeypatch.setattr(bnn, "train_model", _fake_training)
    written = study.ship_networks(LAB5)
    assert written == [workload.shipped_path(config.recipe(n)) for n in study.NETWORKS]
    assert [workload.shipped_weights(config.recipe(n)) for n in study.NETWORKS] == written
