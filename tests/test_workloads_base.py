"""The workload contract for every registered workload, lookup errors, wrapping any module."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from torchvision.models import ResNet, resnet18

from memsim.registry import UnknownNameError
from workloads import WORKLOADS, Workload, get_workload
from workloads.generic import ModuleWorkload, register, wrap


@pytest.mark.parametrize("name", WORKLOADS.names())
def test_every_registered_workload_keeps_the_contract(name):
    workload = get_workload(name)
    assert isinstance(workload, Workload)
    assert workload.name == name
    model = workload.build_model()
    assert isinstance(model, nn.Module)
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, *workload.input_shape))
    assert logits.shape == (2, workload.num_classes)


def test_unknown_workload_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as err:
        get_workload("vgg_Q")
    message = str(err.value)
    assert "vgg_Q" in message and "digits" in message and "vgg_A" in message


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(
        TypeError, match="does not accept option.*'colour'.*Valid options: checkpoint"
    ):
        get_workload("digits", colour="red")


def test_get_workload_passes_a_workload_through():
    workload = get_workload("digits")
    assert get_workload(workload) is workload


def test_bad_split_and_limit_are_clear_errors():
    workload = get_workload("digits")
    with pytest.raises(ValueError, match="'split' parameter"):
        workload.dataset("validation")
    with pytest.raises(ValueError, match="'limit' parameter"):
        workload.dataset("test", limit=0)


def test_resnet18_cifar_is_torchvisions_resnet_untrained_without_checkpoint():
    workload = get_workload("resnet18_cifar", data_root="/nonexistent")  # no data touched
    assert isinstance(workload.build_model(), ResNet)
    assert workload.input_shape == (3, 32, 32) and workload.num_classes == 10
    with pytest.warns(UserWarning, match="untrained"):
        model = workload.load_model()
    assert not model.training
    with pytest.raises(FileNotFoundError, match="MEMSIM_DATA"):
        workload.dataset("test", limit=4)


def test_wrapping_an_unedited_resnet18_with_tensors_and_datasets():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, 32, 32, generator=gen)
    y = torch.arange(12) % 10
    net = resnet18(num_classes=10)
    for data in ({"test": (x, y)}, {"test": TensorDataset(x, y)}):
        workload = wrap(net, data, name="my_resnet")
        assert workload.num_classes == 10 and workload.input_shape == (3, 32, 32)
        xs, ys = workload.dataset("test", limit=5)
        assert torch.equal(xs, x[:5]) and ys.dtype == torch.int64
        model = workload.load_model()
        assert not model.training and model is not net  # the user's module is left alone
        with torch.no_grad():
            assert model(xs).shape == (5, 10)
    with pytest.raises(ValueError, match="no 'train' data"):
        workload.dataset("train")


def test_wrap_rejects_bad_data_and_registers_by_name():
    with pytest.raises(TypeError, match="mapping"):
        wrap(nn.Linear(4, 2), [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        wrap(nn.Linear(4, 2), {"test": (torch.zeros(0, 4), torch.zeros(0))}).dataset("test")
    register(
        "tiny_linear_test",
        lambda: nn.Linear(4, 3),
        {"test": (torch.zeros(6, 4), torch.arange(6) % 3)},
    )
    try:
        workload = get_workload("tiny_linear_test")
        assert isinstance(workload, ModuleWorkload) and workload.num_classes == 3
    finally:  # keep the registry as other tests expect it
        WORKLOADS._items.pop("tiny_linear_test", None)


class _SizeUnknown:
    """A data source with ``dataset`` only: its size is known once it is loaded."""

    def dataset(self, split, limit=None):
        x, y = torch.zeros(20, 4), torch.arange(20) % 3
        return (x[:limit], y[:limit]) if limit is not None else (x, y)


def test_a_count_beyond_a_split_of_unknown_size_is_refused_once_loaded():
    """dataset() cut such a count to the split silently; samples() refuses it, naming the
    key that asked, the split and what it holds."""
    workload = wrap(nn.Linear(4, 3), _SizeUnknown(), name="size_unknown")
    assert workload.split_size("test") is None
    workload.check_count("test", 1000)  # nothing to check against in advance
    with pytest.raises(ValueError) as refused:
        workload.samples("test", 1000, "'sweep.images'")
    assert str(refused.value) == (
        "'sweep.images': 1000 images asked for, but the 'test' split of workload "
        "size_unknown holds 20."
    )
    x, y = workload.samples("test", 20)
    assert len(x) == len(y) == 20
    assert len(workload.samples("test", None)[0]) == 20


@pytest.mark.filterwarnings("ignore:Workload size_unknown_test has no checkpoint")
def test_a_run_on_a_split_of_unknown_size_stops_before_any_point(tmp_path):
    from memsim.experiment.load import load_experiment
    from memsim.experiment.run import RunOptions, run_experiment

    register("size_unknown_test", lambda: nn.Linear(4, 3), _SizeUnknown(), num_classes=3)
    try:
        config, _ = load_experiment(
            overrides=[
                'workloads=["size_unknown_test"]',
                'formats=["float32"]',
                "grid.values=[1e-3]",
                "sweep.repeats=1",
                "sweep.images=1000",
                "memory.enabled=false",
            ]
        )
        out = tmp_path / "out"
        with pytest.raises(ValueError, match=r"^'sweep.images': 1000 images asked for"):
            run_experiment(config, RunOptions(out=out, workers=1, progress=False))
        assert not (out / "points.csv").exists()
    finally:
        WORKLOADS._items.pop("size_unknown_test", None)


def test_the_default_calibration_count_takes_a_small_split_whole():
    """A custom data set with fewer training images than the default calibration count
    (256) works with int8 as before; only a count given explicitly is held to the split."""
    from memsim.config import ConfigError
    from memsim.experiment.load import load_experiment
    from memsim.experiment.plugins import calibration_images

    x, y = torch.randn(40, 4), torch.arange(40) % 3
    register("small_train_test", lambda: nn.Linear(4, 3), {"train": (x, y), "test": (x, y)})
    try:
        workload = get_workload("small_train_test")
        assert len(calibration_images(workload, 256)) == 40  # the default: the whole split
        with pytest.raises(ValueError, match=r"^'sweep.calibration_images': 300 images"):
            calibration_images(workload, 300)
        small = [
            'workloads=["small_train_test"]',
            'formats=["int8"]',
            'policies=["baseline"]',
            "memory.enabled=false",
        ]
        config, _ = load_experiment(overrides=small)
        assert config.sweep.calibration_images == 256
        with pytest.raises(ConfigError, match="'sweep.calibration_images' in .*holds 40"):
            load_experiment(overrides=[*small, "sweep.calibration_images=300"])
    finally:
        WORKLOADS._items.pop("small_train_test", None)
