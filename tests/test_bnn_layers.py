"""Binarized layers: XNOR-popcount semantics, straight-through gradients, networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workloads import get_workload
from workloads.bnn import (
    BinaryConv2d,
    BinaryLinear,
    BinaryMLP,
    BinaryVGG,
    binarize,
    binary_layers,
    sign,
    xnor_popcount,
)


def _bits(t: torch.Tensor) -> np.ndarray:
    return (t >= 0).to(torch.uint8).numpy()


def test_sign_maps_zero_to_plus_one():
    assert sign(torch.tensor([-2.0, -0.0, 0.0, 3.0])).tolist() == [-1.0, 1.0, 1.0, 1.0]


def test_binary_linear_equals_xnor_popcount():
    gen = torch.Generator().manual_seed(0)
    layer = BinaryLinear(77, 13)  # 77 is not a multiple of 8: exercises the packing pad
    with torch.no_grad():
        layer.weight.copy_(torch.randn(13, 77, generator=gen))
    a = sign(torch.randn(9, 77, generator=gen))
    out = layer(a).detach()
    expected = xnor_popcount(_bits(a), layer.stored_bits().numpy())
    assert out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy().astype(np.int64), expected)
    assert np.all(out.numpy() == expected)  # exact integers, not approximately


def test_binary_conv_equals_xnor_popcount_on_patches():
    gen = torch.Generator().manual_seed(1)
    conv = BinaryConv2d(5, 7, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(7, 5, 3, 3, generator=gen))
    a = sign(torch.randn(2, 5, 6, 6, generator=gen))
    out = conv(a).detach()
    # Patches of the −1-padded input: every output is a binary dot product of 45 bits.
    patches = F.unfold(F.pad(a, (1, 1, 1, 1), value=-1.0), kernel_size=3)  # (2, 45, 36)
    rows = patches.transpose(1, 2).reshape(-1, 45)
    expected = xnor_popcount(_bits(rows), conv.stored_bits().reshape(7, -1).numpy())
    got = out.permute(0, 2, 3, 1).reshape(-1, 7).numpy()
    np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_xnor_popcount_matches_plain_dot_product():
    rng = np.random.default_rng(2)
    a, w = rng.integers(0, 2, (4, 130)), rng.integers(0, 2, (3, 130))
    assert np.array_equal(xnor_popcount(a, w), (2 * a - 1) @ (2 * w - 1).T)


def test_straight_through_gradient_is_clipped():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.7, 1.5], requires_grad=True)
    binarize(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_train_flips_are_fresh_per_forward_and_off_in_eval():
    layer = BinaryLinear(64, 64)
    layer.train_flips = (0.3, 0.3, torch.Generator().manual_seed(0))
    a = torch.ones(1, 64)
    layer.train()
    first, second = layer(a), layer(a)
    assert not torch.equal(first, second)
    layer.eval()
    assert torch.equal(layer(a), F.linear(a, sign(layer.weight)))


def test_error_aware_flips_of_seeds_2_to_the_32_apart_differ():
    """The flips' CPU generators are ``torch_generator(child_seed(seed, "flips"), ...)``:
    ``manual_seed`` keeps the low 32 bits of the 63-bit child seed, but the child is a hash of
    all 64 bits of the training seed, so seeds that differ only above bit 32 flip other signs
    (and one seed always the same ones)."""
    import dataclasses

    from workloads.bnn import ErrorAwareFlips, bnn_recipe

    def flips(seed: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = BinaryMLP(64, (64,), 10)
        config = dataclasses.replace(bnn_recipe(epochs=1), seed=seed, weight_noise_p=0.3)
        model.train()
        with ErrorAwareFlips().training(model, config):
            return torch.cat([layer.binary_weight().flatten() for _, layer in binary_layers(model)])

    seed = 12345
    base = flips(seed)
    assert torch.equal(base, flips(seed))
    for other in (seed + (1 << 32), seed + (1 << 40), seed ^ (1 << 63)):
        assert not torch.equal(base, flips(other))


def test_networks_have_binary_weights_and_real_ends():
    mlp = BinaryMLP(64, (32, 16), 10)
    assert len(binary_layers(mlp)) == 3  # every MLP weight is binary
    vgg = BinaryVGG((8, "M", 16, "M"), fc=(32,))
    names = [n for n, _ in binary_layers(vgg)]
    assert names == ["features.4", "classifier.1"]  # first conv and last linear stay real
    assert vgg(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bnn_workloads_are_registered():
    w = get_workload("bnn_digits")
    x, y = w.dataset("test", limit=10)
    assert x.shape == (10, 1, 8, 8) and w.build_model()(x).shape == (10, 10)
    with pytest.raises(ValueError, match="train_ber"):
        get_workload("bnn_digits", train_ber=0.7)


def test_bnn_mnist_reads_an_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in range(10):
            (tmp_path / split / str(cls)).mkdir(parents=True)
            for i in range(2):
                img = rng.integers(0, 256, (28, 28), dtype=np.uint8)
                Image.fromarray(img, mode="L").save(tmp_path / split / str(cls) / f"{i}.png")
    w = get_workload("bnn_mnist", data_root=tmp_path)
    x, y = w.dataset("test")
    assert x.shape == (20, 1, 28, 28) and sorted(set(y.tolist())) == list(range(10))
    with pytest.raises(FileNotFoundError, match="MNIST"):
        get_workload("bnn_mnist", data_root=tmp_path / "nowhere").dataset("test")


@pytest.mark.cifar
def test_bnn_cifar10_runs_on_the_offline_copy(cifar_root):
    w = get_workload("bnn_cifar10", data_root=cifar_root.parent)
    x, y = w.dataset("test", limit=16)
    model = w.build_model().eval()
    assert x.shape == (16, 3, 32, 32) and model(x).shape == (16, 10)
    assert sum(m.weight.numel() for _, m in binary_layers(model)) == 387_072
    with pytest.raises(FileNotFoundError, match="No trained weights"):
        w.load_model()
