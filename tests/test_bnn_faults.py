"""Weight fault maps (through the noisy network) and activation noise of binarized networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from memsim.device import load_condition
from memsim.inference.binary import binary_activations, binary_weight_layers
from memsim.inference.faults import (
    FaultMap,
    activation_channel,
    cell_rates,
    weight_bits,
)
from memsim.inference.network import NoisyNetwork
from policies.channels import BinaryChannel
from workloads.bnn import BinaryLinear, BinaryMLP, BinaryVGG, SignActivation


def predict(model, x, *, faults=None, act_channel=None, seed=0):
    """Logits through the noisy network: the fault map installed, activations noisy."""
    net = NoisyNetwork(model, "float32", fault_map=faults)
    return net.logits(x, activation_channel(model, act_channel), seed=seed)


N = 200_000


def _layer_with(signs: torch.Tensor) -> torch.nn.Module:
    model = torch.nn.Sequential(BinaryLinear(signs.shape[1], signs.shape[0]))
    with torch.no_grad():
        model[0].weight.copy_(signs)
    return model


def _binomial_ok(k: int, n: int, p: float, alpha: float = 1e-4) -> bool:
    return stats.binomtest(k, n, p).pvalue > alpha


def test_fault_count_is_binomial_for_each_direction_separately():
    # Half +1, half −1, with very different rates per direction.
    signs = torch.cat([torch.ones(1, N // 2), -torch.ones(1, N // 2)], dim=1)
    model = _layer_with(signs)
    p01, p10 = 0.002, 0.03
    flips = FaultMap.draw(model, p01, p10, seed=7)["0"].reshape(-1).numpy()
    k10, k01 = int(flips[: N // 2].sum()), int(flips[N // 2 :].sum())
    assert _binomial_ok(k10, N // 2, p10)
    assert _binomial_ok(k01, N // 2, p01)
    assert not _binomial_ok(k01, N // 2, p10)  # the directions are not mixed up


def test_all_ones_and_all_zeros_see_only_their_direction():
    plus = _layer_with(torch.ones(1, N))
    minus = _layer_with(-torch.ones(1, N))
    assert int(FaultMap.draw(plus, 0.5, 0.0, seed=1)["0"].sum()) == 0
    assert int(FaultMap.draw(minus, 0.0, 0.5, seed=1)["0"].sum()) == 0
    assert _binomial_ok(int(FaultMap.draw(minus, 0.01, 0.0, seed=1)["0"].sum()), N, 0.01)


def test_fault_positions_are_uniform():
    model = _layer_with(torch.ones(1, N))
    flips = FaultMap.draw(model, 0.0, 0.05, seed=3)["0"].reshape(-1).numpy()
    counts = flips.reshape(20, -1).sum(axis=1)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_maps_are_persistent_per_seed_and_nested_across_rates():
    model = BinaryMLP(64, (128,), 10)
    a = FaultMap.draw(model, 0.01, seed=5)
    b = FaultMap.draw(model, 0.01, seed=5)
    c = FaultMap.draw(model, 0.05, seed=5)
    d = FaultMap.draw(model, 0.01, seed=6)
    for name in a:
        assert torch.equal(a[name], b[name])
        assert bool((c[name] | ~a[name]).all())  # faults at 0.01 ⊂ faults at 0.05
    assert any(not torch.equal(a[n], d[n]) for n in a)


def test_zero_errors_equal_the_clean_network_bit_for_bit():
    torch.manual_seed(0)
    model = BinaryVGG((8, "M", 16, "M"), fc=(32,)).eval()
    x = torch.randn(16, 3, 32, 32)
    clean = model(x)
    noisy = predict(
        model, x, faults=FaultMap.draw(model, 0.0, seed=1), act_channel=BinaryChannel(0.0), seed=3
    )
    assert torch.equal(clean, noisy)
    with FaultMap.draw(model, 0.2, seed=1).applied(model):
        assert not torch.equal(model(x), clean)
    assert torch.equal(model(x), clean)  # the map is removed on exit


def test_noisy_network_keeps_its_fault_map_for_its_lifetime_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = BinaryMLP(64, (64,), 10).eval()
    x = torch.randn(32, 1, 8, 8)
    clean = model(x)
    faults = FaultMap.draw(model, 0.2, seed=4)
    net = NoisyNetwork(model, "float32", fault_map=faults)
    first, second = net.logits(x, seed=0), net.logits(x, seed=1)
    assert torch.equal(first, second)  # persistent: the same map on every forward pass
    assert not torch.equal(first, clean)
    assert torch.equal(model(x), clean)  # installed on the network's copy only
    assert all(layer.fault_mask is None for _, layer in binary_weight_layers(model))
    assert net.evaluate(x, model(x).argmax(1), None, seed=0).accuracy < 1.0
    with pytest.raises(TypeError, match="FaultMap"):
        NoisyNetwork(model, "float32", fault_map={"layers.1": faults["layers.1"]})
    with pytest.raises(ValueError, match="lacks"):
        NoisyNetwork(BinaryMLP(64, (64,), 10), fault_map=FaultMap({"nope": faults["layers.1"]}))


def test_workload_layers_reach_the_engine_through_the_registry():
    model = BinaryMLP(64, (32, 16), 10)
    assert [n for n, _ in binary_weight_layers(model)] == ["layers.1", "layers.4", "layers.7"]
    assert [type(m) for _, m in binary_activations(model)] == [SignActivation, SignActivation]
    # A plain network has no binary layers: an empty fault map, nothing counted.
    plain = torch.nn.Sequential(torch.nn.Linear(4, 2))
    assert len(FaultMap.draw(plain, 0.5, seed=0)) == 0
    assert weight_bits(plain) == {"bits": 0, "ones": 0, "zeros": 0}


def test_fault_map_flips_exactly_the_faulty_weight_signs():
    model = BinaryMLP(64, (32,), 10).eval()
    faults = FaultMap.draw(model, 0.1, seed=2)
    x = torch.randn(4, 1, 8, 8)
    reference = BinaryMLP(64, (32,), 10).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        for (name, layer), (_, ref) in zip(
            [(n, m) for n, m in model.named_modules() if isinstance(m, BinaryLinear)],
            [(n, m) for n, m in reference.named_modules() if isinstance(m, BinaryLinear)],
        ):
            ref.weight.copy_(
                torch.where(faults[name], -torch.sign(layer.weight + 1e-12), layer.weight)
            )
    assert torch.equal(predict(model, x, faults=faults), reference(x))


def test_activation_noise_is_fresh_on_every_write():
    model = BinaryMLP(64, (256, 256), 10).eval()
    x = torch.randn(32, 1, 8, 8)
    channel = BinaryChannel(0.2)
    net = NoisyNetwork(model, "float32")
    per_write = activation_channel(model, channel)
    noisy = [wp.name for wp in net.write_points(x) if per_write(wp) is not None]
    assert noisy == ["layers.3", "layers.6"]  # the two sign layers, nothing else
    first, second = net.logits(x, per_write, seed=0), net.logits(x, per_write, seed=1)
    assert not torch.equal(first, second)  # fresh flips per forward pass
    assert not torch.equal(first, model(x))
    assert torch.equal(
        predict(model, x, act_channel=channel, seed=9),
        predict(model, x, act_channel=channel, seed=9),
    )
    assert activation_channel(model, BinaryChannel(0.0)) is None


def test_weight_bits_and_cell_rates():
    model = _layer_with(torch.tensor([[1.0, -1.0, 0.0, -0.5]]))
    assert weight_bits(model) == {"bits": 4, "ones": 2, "zeros": 2}
    low = load_condition("low_energy")
    assert cell_rates(low, "1t1r") == (low.p01, low.p10)
    p = cell_rates(low, "2t2r")
    assert p[0] == p[1] == low.p_2t2r() and p[0] < low.p_bf
    with pytest.raises(ValueError, match="cell"):
        cell_rates(low, "3t3r")
    with pytest.raises(ValueError, match="p01"):
        FaultMap.draw(model, 1.5, seed=0)


def test_binomial_helper_rejects_wrong_rate():
    assert not _binomial_ok(int(0.02 * N), N, 0.01)
    assert np.isfinite(stats.binomtest(5, 10, 0.5).pvalue)
