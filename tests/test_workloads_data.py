"""Data roots, ImageFolder decoding, the fixed stratified order, augmentation, data errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from workloads import data as data_mod
from workloads.data import CIFAR10_CLASSES, Cifar10Data, fixed_order, load_image_folder


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEMSIM_DATA", raising=False)


def _tree(root, classes, per_class, size=32):
    gen = torch.Generator().manual_seed(1)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8, generator=gen)
            Image.fromarray(pixels.numpy()).save(root / c / f"{i}.png")


def test_image_folder_round_trip_in_fixed_stratified_order(tmp_path):
    _tree(tmp_path / "cifar10-jpeg" / "test", CIFAR10_CLASSES, per_class=3)
    data = Cifar10Data(data_root=tmp_path)
    x, y = data.dataset("test")
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert sorted(y[:10].tolist()) == list(range(10))  # any prefix holds every class
    # the float tensors are the lossless PNG pixels, scaled and normalised
    raw, labels = data_mod.load_cifar10("test", data_root=tmp_path)
    assert raw.dtype == torch.uint8 and torch.equal(labels, y)
    assert torch.allclose(data_mod.normalize(raw, data.mean, data.std), x)
    first = tmp_path / "cifar10-jpeg" / "test" / CIFAR10_CLASSES[int(y[0])]
    on_disk = {np.asarray(Image.open(f)).tobytes() for f in first.iterdir()}
    assert raw[0].permute(1, 2, 0).numpy().tobytes() in on_disk
    xs, ys = data.dataset("test", limit=7)
    assert torch.equal(xs, x[:7]) and torch.equal(ys, y[:7])


def test_fixed_order_is_stratified_and_stable():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    order = fixed_order(labels, "k")
    assert sorted(order.tolist()) == list(range(100))
    assert np.array_equal(order, fixed_order(labels, "k"))
    assert np.bincount(labels[order[:10]], minlength=4).tolist() == [1, 2, 3, 4]


def test_missing_data_root_says_how_to_get_the_data(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="MEMSIM_DATA.*download=True"):
        Cifar10Data(data_root=tmp_path / "nowhere").dataset("test")
    monkeypatch.setenv("MEMSIM_SHARED", str(tmp_path / "no_shared"))
    with pytest.raises(FileNotFoundError, match="no data root is configured"):
        Cifar10Data().dataset("test")
    with pytest.raises(FileNotFoundError, match="not found \\(looked in"):
        Cifar10Data(data_root=tmp_path).dataset("train")


def test_data_root_from_environment(tmp_path, monkeypatch):
    _tree(tmp_path / "test", CIFAR10_CLASSES, per_class=1)
    monkeypatch.setenv("MEMSIM_DATA", str(tmp_path))
    assert Cifar10Data().dataset("test")[0].shape == (10, 3, 32, 32)


def test_empty_data_set_is_an_error(tmp_path):
    for c in CIFAR10_CLASSES:
        (tmp_path / "test" / c).mkdir(parents=True)
    with pytest.raises(ValueError, match="is empty"):
        Cifar10Data(data_root=tmp_path).dataset("test")


def test_class_count_mismatch_is_an_error(tmp_path):
    _tree(tmp_path / "test", ["cat", "dog", "frog"], per_class=1)
    with pytest.raises(ValueError, match="3 class folders.*expects 10"):
        Cifar10Data(data_root=tmp_path).dataset("test")


def test_disk_cache_reproduces_the_decoded_split(tmp_path):
    folder = tmp_path / "imgs" / "test"
    _tree(folder, ["a", "b"], per_class=4, size=8)
    x1, y1 = load_image_folder(folder, split="test", num_classes=2)
    data_mod._MEMORY.clear()
    assert list((tmp_path / "cache" / "data").glob("*.pt"))
    x2, y2 = load_image_folder(folder, split="test", num_classes=2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_augment_is_a_padded_crop_or_its_mirror():
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = Cifar10Data().augment(x, torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(len(x)):
        crops = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)
    assert not torch.equal(out, x)


def test_split_sizes_come_from_the_listing_without_decoding(tmp_path, monkeypatch):
    _tree(tmp_path / "cifar10-jpeg" / "test", CIFAR10_CLASSES, per_class=2)
    data = Cifar10Data(data_root=tmp_path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("split_size decoded images")

    monkeypatch.setattr(data_mod, "_decode", no_decoding)
    assert data.split_size("test") == 20
    assert data.split_size("train") is None  # not here: a run says so when it loads it
    assert Cifar10Data(data_root=tmp_path / "nowhere").split_size("test") is None
    (tmp_path / "tv" / "cifar-10-batches-py").mkdir(parents=True)
    assert Cifar10Data(data_root=tmp_path / "tv").split_size("train") == 50_000
    with pytest.raises(ValueError, match="split"):
        data.split_size("validation")


def test_every_shipped_workload_knows_its_split_sizes_where_its_data_is(tmp_path):
    from workloads import get_workload
    from workloads.bnn import BNNMnistWorkload

    digits = get_workload("digits")
    assert digits.split_size("test") == len(digits.dataset("test")[1]) > 0
    _tree(tmp_path / "cifar10-jpeg" / "test", CIFAR10_CLASSES, per_class=1)
    assert get_workload("vgg_A", data_root=str(tmp_path)).split_size("test") == 10
    _tree(tmp_path / "mnist" / "test", [str(d) for d in range(10)], per_class=2, size=28)
    assert BNNMnistWorkload(data_root=tmp_path).split_size("test") == 20
    assert BNNMnistWorkload(data_root=tmp_path).split_size("train") is None


def test_a_generic_workload_counts_its_tensors_and_datasets():
    from torch import nn
    from torch.utils.data import TensorDataset

    from workloads.generic import ModuleWorkload

    x, y = torch.zeros(5, 3), torch.zeros(5, dtype=torch.int64)
    data = {"test": (x, y), "train": TensorDataset(x[:4], y[:4])}
    workload = ModuleWorkload("tiny", nn.Linear(3, 2), data, num_classes=2)
    assert workload.split_size("test") == 5 and workload.split_size("train") == 4
    from_source = ModuleWorkload("tiny", nn.Linear(3, 2), Cifar10Data(data_root="/nowhere"))
    assert from_source.split_size("test") is None
