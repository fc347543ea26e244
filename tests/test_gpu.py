"""The CUDA path: every engine that claims CUDA passes the CPU statistical tests on CUDA tensors,
and noisy inference, int8, tracing and the sweep run with ``device="cuda"``.

Selected with ``-m gpu``; every test is skipped cleanly where CUDA is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import binomial_counts_pvalue
from test_noise_coupled import CASES, IDS, check_nested_and_binomial
from test_noise_stats import ALPHA, assert_binomial_per_position, bit_matrix, filled, random_words

from memsim.experiment.run import RunOptions, load_experiment, run_experiment
from memsim.noise import flip
from memsim.noise.engine import ENGINES
from memsim.noise.engines import get_engine

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def cuda_engines() -> list[str]:
    """Registered engines that claim CUDA (``devices`` None or naming cuda), plus ``auto``."""
    names = [n for n in ENGINES.names() if n != "auto"]
    return [n for n in names if ENGINES.get(n).devices is None or "cuda" in ENGINES.get(n).devices]


@pytest.fixture
def use(monkeypatch):
    """Engine variants with the torch engine's sparse/dense switch forced."""
    from memsim.noise import torch_engine

    def pick(variant: str) -> str:
        engine, _, path = variant.partition("_")
        if engine == "torch" and path:
            monkeypatch.setattr(torch_engine, "DENSE_ABOVE", 0.0 if path == "dense" else 2.0)
        return engine

    return pick


def variants() -> list[str]:
    out = []
    for name in cuda_engines():
        out += [f"{name}_sparse", f"{name}_dense"] if name == "torch" else [name]
    return out


def on_cuda(x: torch.Tensor) -> torch.Tensor:
    return x.to("cuda")


def test_auto_picks_a_cuda_engine():
    engine = get_engine("auto", torch.device("cuda"))
    assert engine.devices is None or "cuda" in engine.devices


@pytest.mark.parametrize("ones", [False, True], ids=["all_zeros", "all_ones"])
@pytest.mark.parametrize("p01,p10", [(0.01, 0.004), (0.2, 0.07)])
@pytest.mark.parametrize("variant", variants())
def test_each_direction_per_position_is_binomial_on_cuda(use, variant, p01, p10, ones):
    engine = use(variant)
    n = 30_000
    x = on_cuda(filled("float32", n, ones))
    y = flip(x, p01, p10, engine=engine, seed=11)
    assert y.device.type == "cuda"
    flips = (bit_matrix(x.cpu()) != bit_matrix(y.cpu())).sum(axis=0)
    assert_binomial_per_position(flips, np.full(32, n), np.full(32, p10 if ones else p01))


@pytest.mark.parametrize("fmt_name", ["float64", "float32", "float16", "bfloat16", "int8"])
@pytest.mark.parametrize("variant", variants())
def test_mixed_bits_on_cuda(use, variant, fmt_name):
    p01, p10 = 0.05, 0.02
    engine = use(variant)
    from memsim.formats import get_format

    n = 8192 * 64 // get_format(fmt_name).width
    x = random_words(fmt_name, n, seed=5)
    before = bit_matrix(x)
    changed = before != bit_matrix(flip(on_cuda(x), p01, p10, engine=engine, seed=12).cpu())
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        flips = (changed & is_value).sum(axis=0)
        assert_binomial_per_position(flips, is_value.sum(axis=0), np.full(before.shape[1], p))


@pytest.mark.parametrize("p", [0.02, 0.3])
@pytest.mark.parametrize("variant", variants())
def test_flips_per_word_are_independent_on_cuda(use, variant, p):
    engine = use(variant)
    x = torch.zeros(40_000, device="cuda")
    counts = (bit_matrix(x.cpu()) != bit_matrix(flip(x, p, engine=engine, seed=3).cpu())).sum(1)
    assert binomial_counts_pvalue(counts, 32, p) > ALPHA


@pytest.mark.parametrize("variant", variants())
def test_ladder_on_cuda_is_nested_and_binomial(use, variant):
    engine = use(variant)
    ladder = [1e-3, 1e-2, 5e-2]
    x = torch.zeros(60_000, device="cuda")
    changed = [
        bit_matrix(x.cpu()) != bit_matrix(flip(x, p, engine=engine, seed=7, ladder=ladder).cpu())
        for p in ladder
    ]
    for small, large in zip(changed, changed[1:]):
        assert not (small & ~large).any(), "a flip at a smaller p is missing at a larger one"
    for p, c in zip(ladder, changed):
        assert_binomial_per_position(c.sum(axis=0), np.full(32, x.numel()), np.full(32, p))


@pytest.mark.parametrize("fmt,ladder,bits", CASES, ids=IDS)
def test_coupled_entries_on_cuda_are_nested_and_binomial(fmt, ladder, bits):
    """The torch engine's coupled draws (Poisson hits, a dense pass above the split) on CUDA."""
    check_nested_and_binomial(fmt, ladder, 40_001, [3], bits=bits, engine="torch", device="cuda")


# --------------------------------------------------------------------------- inference on CUDA

SMALL = [
    'formats=["float32", "int8"]',
    'policies=["baseline"]',
    "grid.p_min=1e-4",
    "grid.points_per_decade=1",
    "sweep.repeats=1",
    "sweep.images=64",
    "memory.enabled=false",
]


def test_sweep_on_cuda_matches_the_cpu_clean_accuracy(tmp_path):
    """Noisy float32 and int8 inference run on CUDA; clean points agree with the CPU's.

    Both with the torch engine (what ``auto`` picks on CUDA): on the CPU, numba's kernels
    would first compile, for minutes on a cold cache, of the few minutes a GPU is lent."""
    config, _ = load_experiment(overrides=[*SMALL, 'sweep.engine="torch"'])
    run_experiment(config, RunOptions(out=tmp_path / "cpu", progress=False), sweep_only=True)
    run_experiment(
        config, RunOptions(out=tmp_path / "cuda", device="cuda", progress=False), sweep_only=True
    )
    cpu = pd.read_csv(tmp_path / "cpu" / "points.csv")
    gpu = pd.read_csv(tmp_path / "cuda" / "points.csv")
    assert list(gpu["point_id"]) == list(cpu["point_id"])
    clean_cpu = cpu[cpu["kind"] == "clean"]["accuracy"].to_numpy()
    clean_gpu = gpu[gpu["kind"] == "clean"]["accuracy"].to_numpy()
    # Kernels differ between devices; at most one image of 64 may change its argmax.
    assert np.abs(clean_cpu - clean_gpu).max() <= 1 / 64 + 1e-12
    assert gpu["accuracy"].between(0, 1).all() and (gpu["n_images"] == 64).all()


@pytest.mark.parametrize("fmt", ["float32", "int8"])
def test_trace_on_cuda_matches_the_cpu_trace(fmt):
    from memsim.inference.network import NoisyNetwork
    from memsim.trace.capture import trace_model
    from workloads import get_workload

    workload = get_workload("digits")
    model = workload.load_model()
    x, _ = workload.dataset("test", limit=16)
    cpu = trace_model(NoisyNetwork(model, fmt, calibration=x), x, workload_name="digits")
    net = NoisyNetwork(model, fmt, calibration=x)
    net.logits(x[:2], device="cuda")  # the network now runs on CUDA
    gpu = trace_model(net, x.to("cuda"), workload_name="digits")
    assert [r.name for r in gpu.records] == [r.name for r in cpu.records]
    assert [r.numel for r in gpu.records] == [r.numel for r in cpu.records]


# --------------------------------------------------------------------------- found by review
# Paths first read, never run, on CUDA (no session had a GPU): each test pins what the review
# found, so the first GPU run shows whether the fix holds.


def test_float32_convolutions_on_cuda_are_not_tf32():
    """cuDNN's TF32 default would round float32 to a 10-bit mantissa: CPU and CUDA logits of a
    float32 network then differ by ~1e-3 relative, against ~1e-6 in IEEE float32."""
    from memsim.inference.network import NoisyNetwork
    from workloads.vgg import vgg

    torch.manual_seed(0)
    model = vgg("A", num_classes=10).eval()
    x = torch.randn(8, 3, 32, 32)
    cpu = NoisyNetwork(model, "float32").logits(x)
    gpu = NoisyNetwork(model, "float32").logits(x, device="cuda").cpu()
    assert torch.backends.cudnn.allow_tf32 is False
    assert (gpu - cpu).abs().max() <= 1e-4 * cpu.abs().max()


def test_device_auto_runs_the_sweep_on_cuda_and_records_it(tmp_path):
    import json

    config, _ = load_experiment(overrides=[*SMALL, 'formats=["float32"]'])
    run_experiment(config, RunOptions(out=tmp_path, device="auto", progress=False), sweep_only=True)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert (meta["torch_device"], meta["torch_device_asked"]) == ("cuda", "auto")


def test_training_on_cuda_measures_and_returns_the_model_on_the_cpu(tmp_path):
    from workloads.digits import DigitsWorkload
    from workloads.train import TrainConfig, train

    result = train(
        DigitsWorkload(cache=False), TrainConfig(epochs=1, seed=0, limit=256), out=tmp_path / "d.pt",
        device="cuda", progress=False,
    )  # fmt: skip
    assert 0 <= result.test_acc <= 1
    assert all(p.device.type == "cpu" for p in result.model.parameters())
    assert result.checkpoint is not None and result.checkpoint.exists()


def test_a_layer_stored_as_int8_in_a_float_network_calibrates_on_cuda():
    """The per-layer int8 parameters come from a CPU calibration, whatever the device."""
    from memsim.experiment.config import SweepConfig, WorkloadSpec
    from memsim.experiment.points import NetworkEvaluator

    spec = WorkloadSpec(name="digits")
    evaluator = NetworkEvaluator((spec,), (), SweepConfig(images=16), "cuda")
    qparams = evaluator._int8_points(spec.label)
    assert len(qparams) > 0


def test_error_aware_binary_weights_flip_on_cuda_as_on_the_cpu():
    from memsim.rng import torch_generator
    from workloads.bnn_layers import BinaryLinear

    layer = BinaryLinear(64, 32).train()
    masks = []
    for device in ("cpu", "cuda"):
        layer.to(device)
        layer.train_flips = (0.2, 0.1, torch_generator(5, "error-aware", "l"))
        layer.fault_mask = torch.zeros(32, 64, dtype=torch.bool)  # on the CPU, as FaultMap keeps it
        masks.append(layer.binary_weight().detach().cpu())
    assert torch.equal(masks[0], masks[1])
