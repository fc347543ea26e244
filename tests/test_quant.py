"""int8 static post-training quantization (memsim.inference.int8)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memsim.inference.int8 import QMAX, QMIN, affine_qparams, calibrate, dequantize_into_, quantize
from memsim.inference.network import NoisyNetwork
from memsim.inference.taps import Taps


def test_affine_qparams_cover_the_range_and_represent_zero_exactly():
    q = affine_qparams(-1.0, 3.0)
    assert q.scale == pytest.approx(4.0 / 255)
    assert QMIN <= q.zero_point <= QMAX
    x = torch.tensor([-1.0, 0.0, 3.0])
    back = dequantize_into_(torch.empty(3), quantize(x, q), q)
    assert back[1] == 0.0
    assert torch.allclose(back, x, atol=q.scale / 2 + 1e-7)
    # a range that excludes 0 is widened to include it
    assert affine_qparams(2.0, 4.0) == affine_qparams(0.0, 4.0)
    assert affine_qparams(0.0, 0.0).scale == 1.0  # degenerate range stays usable


def test_quantize_saturates_and_rounds_within_half_a_step():
    q = affine_qparams(-2.0, 2.0)
    x = torch.linspace(-3, 3, 1001)
    codes = quantize(x, q)
    assert codes.dtype == torch.int8
    assert codes.min() == QMIN and codes.max() == QMAX
    inside = x.abs() <= 2.0
    back = dequantize_into_(torch.empty_like(x), codes, q)
    assert (back[inside] - x[inside]).abs().max() <= q.scale / 2 + 1e-6


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def test_calibration_percentile_clips_outliers():
    model = _model()
    x = torch.randn(400, 6, generator=torch.Generator().manual_seed(0))
    x[0] = 100.0  # one outlier input
    taps = Taps(model, x[:2])
    minmax = calibrate(model, taps, x)
    pct = calibrate(model, taps, x, method="percentile", percentile=99.0)
    assert pct.network_input.scale < minmax.network_input.scale / 5
    assert set(minmax.activations) == {0, 1, 2}
    with pytest.raises(ValueError, match="Known methods: minmax, percentile"):
        calibrate(model, taps, x, method="entropy")


def test_weights_are_per_channel_symmetric_int8_and_biases_int32():
    model = _model()
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    net = NoisyNetwork(model, "int8", calibration=x)
    codes = net.weight_codes["0.weight"]
    assert codes.dtype == torch.int8 and codes.abs().max() <= 127
    assert (codes.abs().amax(dim=1) == 127).all()  # every output channel uses its full range
    w, wq = model[0].weight, net.model[0].weight
    step = w.abs().amax(dim=1, keepdim=True) / 127
    assert ((wq - w).abs() <= step / 2 + 1e-7).all()
    assert net.weight_codes["0.bias"].dtype == torch.int32
    assert [wp.format for wp in net.weight_points] == ["int8", "int32", "int8", "int32"]


def test_int8_close_to_float32_on_a_synthetic_task():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 6, generator=gen) * 2
    y = torch.randint(0, 3, (600,), generator=gen)
    x = centers[y] + 0.7 * torch.randn(600, 6, generator=gen)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:400]), y[:400]).backward()
        opt.step()
    model.eval()
    f32 = NoisyNetwork(model, "float32").evaluate(x[400:], y[400:], None, seed=0)
    i8 = NoisyNetwork(model, "int8", calibration=x[:200]).evaluate(x[400:], y[400:], None, seed=0)
    assert f32.accuracy > 0.8
    assert abs(i8.accuracy - f32.accuracy) <= 0.01


def test_int8_within_one_point_of_float32_on_the_default_workload():
    import workloads

    wl = workloads.get_workload("digits")
    model = wl.load_model()
    x, y = wl.dataset("test")
    f32 = NoisyNetwork(model, "float32").evaluate(x, y, None, seed=0)
    i8 = NoisyNetwork(model, "int8", calibration=wl.dataset("train", limit=512)[0]).evaluate(
        x, y, None, seed=0
    )
    assert f32.accuracy > 0.9
    assert abs(i8.accuracy - f32.accuracy) <= 0.01
