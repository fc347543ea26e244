"""Noisy inference (memsim.inference.network): exact clean paths, seeding, fresh flips, bad input."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from memsim.inference.network import TILE, EvalResult, NoisyNetwork, tile_seed
from memsim.noise.channel import BitFlip, Channel, Noiseless
from memsim.rng import child_seed

FLOATS = ["float64", "float32", "float16", "bfloat16"]


def cnn() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


X = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(1))
Y = torch.randint(0, 10, (12,), generator=torch.Generator().manual_seed(2))


class Recording(Channel):
    """Records (dtype, seed) of every call; flips nothing (but is not noiseless)."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.dtype, int]] = []

    def apply_(self, x, seed):
        self.calls.append((x.dtype, seed))
        return x


@pytest.mark.parametrize("fmt", FLOATS)
def test_p0_logits_equal_clean_logits_bit_for_bit(fmt):
    model = cnn()
    net = NoisyNetwork(model, fmt)
    clean = net.logits(X, None)
    # Recording is not noiseless, so the whole write path runs (store, channel, load)
    for channel in (Noiseless(), BitFlip(fmt, 0.0), Recording()):
        assert torch.equal(net.logits(X, channel, seed=3), clean)
    # computing in the storage format is exactly the plain model cast to it
    dtype = net.compute_dtype
    with torch.no_grad():
        assert torch.equal(clean, model.to(dtype)(X.to(dtype)))


def test_p0_int8_equals_its_own_clean_path():
    net = NoisyNetwork(cnn(), "int8", calibration=X)
    clean = net.logits(X, None)
    for channel in (Noiseless(), BitFlip("int8", 0.0), Recording()):
        assert torch.equal(net.logits(X, channel, seed=3), clean)


def test_int8_channel_receives_int8_codes():
    rec = Recording()
    NoisyNetwork(cnn(), "int8", calibration=X, noisy_input=True).logits(X, rec, seed=0)
    assert len(rec.calls) == 6 and {dtype for dtype, _ in rec.calls} == {torch.int8}


def test_int8_flips_change_logits():
    net = NoisyNetwork(cnn(), "int8", calibration=X)
    assert not torch.equal(net.logits(X, BitFlip("int8", 0.05), seed=0), net.logits(X, None))


def test_other_compute_dtype_rounds_every_write_to_storage():
    model = cnn()
    net = NoisyNetwork(model, "float16", compute_dtype="float32")
    clean = net.logits(X, None)
    assert clean.dtype == torch.float32
    assert torch.equal(net.logits(X, BitFlip("float16", 0.0), seed=1), clean)
    assert torch.equal(clean.half().float(), clean)  # logits are float16 values
    rec = Recording()
    net.logits(X, rec, seed=0)
    assert {dtype for dtype, _ in rec.calls} == {torch.float16}


def test_same_seed_same_result_and_different_seeds_differ():
    net = NoisyNetwork(cnn(), "float32")
    ch = BitFlip("float32", 1e-2, bits="mantissa")
    a, b, c = (net.logits(X, ch, seed=s) for s in (5, 5, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    r1 = net.evaluate(X, Y, ch, seed=7, batch_size=5)
    r2 = net.evaluate(X, Y, ch, seed=7, batch_size=5)
    assert r1 == r2 and isinstance(r1, EvalResult) and r1.n_images == 12


def test_every_write_of_every_batch_gets_its_own_child_seed():
    net = NoisyNetwork(cnn(), "float32", noisy_input=True)
    rec = Recording()
    net.evaluate(X, Y, rec, seed=11, batch_size=5)  # 3 batches × 6 writes
    seeds = [s for _, s in rec.calls]
    assert seeds == [child_seed(11, "write", b, w) for b in range(3) for w in range(6)]


def test_tiles_of_a_batch_draw_from_tile_seeds_of_each_write():
    net = NoisyNetwork(cnn(), "float32", noisy_input=True, tile=4)
    rec = Recording()
    sizes: list[int] = []
    orig = rec.apply_

    def apply_(x, seed):
        sizes.append(x.shape[0])
        return orig(x, seed)

    rec.apply_ = apply_
    net.evaluate(X, Y, rec, seed=11, batch_size=10)  # batches of 10 and 2: tiles 4+4+2 and 2
    seeds = [s for _, s in rec.calls]
    expected = [
        tile_seed(child_seed(11, "write", b, w), t)
        for b, tiles in ((0, 3), (1, 1))
        for t in range(tiles)
        for w in range(6)
    ]
    assert seeds == expected
    assert sizes == [4] * 12 + [2] * 12
    assert len(set(seeds)) == len(seeds)  # every tile of every write its own stream
    assert tile_seed(123, 0) == 123 and 0 <= tile_seed(123, 1) < 2**63


def test_tiles_change_which_flips_not_the_clean_result():
    x = torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    tiled, whole = NoisyNetwork(cnn(), "float32"), NoisyNetwork(cnn(), "float32", tile=None)
    assert tiled.tile == TILE and whole.tile is None
    torch.testing.assert_close(tiled.logits(x, None), whole.logits(x, None))
    ch = BitFlip("float32", 1e-2, bits="mantissa")
    a, b = tiled.logits(x, ch, seed=4), whole.logits(x, ch, seed=4)
    # The first tile draws from the write's own seed, as a whole batch does: same flips there.
    first = NoisyNetwork(cnn(), "float32", tile=None).logits(x[:TILE], ch, seed=4)
    assert torch.equal(a[:TILE], first)
    assert not torch.equal(a[TILE:], b[TILE:])
    assert torch.equal(a, tiled.logits(x, ch, seed=4))


@pytest.mark.parametrize("tile", [0, -1, 2.5, True])
def test_bad_tile_is_a_clear_error(tile):
    with pytest.raises(ValueError, match="tile must be a positive int or None"):
        NoisyNetwork(cnn(), "float32", tile=tile)


def test_fresh_flips_for_two_writes_of_the_same_values():
    class Copy(nn.Module):
        def forward(self, x):
            return x.clone()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.copy = Copy()

        def forward(self, x):
            return torch.cat([self.copy(x), self.copy(x)], dim=1)

    x = torch.ones(4, 1000)
    out = NoisyNetwork(Twice(), "float32").logits(x, BitFlip("float32", 1e-2), seed=0)
    first, second = out[:, :1000], out[:, 1000:]
    assert (first != 1).any() and (second != 1).any()
    assert not torch.equal(first != 1, second != 1)


def test_nonfinite_logits_are_counted_not_fatal():
    class Blow(Channel):
        """Sets every exponent bit of the first two samples' logits (inf/NaN)."""

        def apply_(self, x, seed):
            if x.dim() == 2:
                x[:2].view(torch.int32).bitwise_or_(0x7F800000)
            return x

    net = NoisyNetwork(cnn(), "float32")
    result = net.evaluate(X, Y, lambda wp: Blow() if wp.name == "5" else None, seed=0)
    assert result.nonfinite_fraction == pytest.approx(2 / 12)
    logits = net.logits(X, lambda wp: Blow() if wp.name == "5" else None)
    assert not torch.isfinite(logits[:2]).all() and torch.isfinite(logits[2:]).all()


def test_per_layer_channels_from_a_callable():
    rec = Recording()
    net = NoisyNetwork(cnn(), "float32")
    net.logits(X, lambda wp: rec if wp.module_type == "Conv2d" else None, seed=0)
    assert len(rec.calls) == 1


def test_weight_noise_is_one_persistent_draw_per_load():
    model = cnn()
    before = [p.clone() for p in model.parameters()]
    ch = BitFlip("float32", 1e-2, bits="mantissa")
    a = NoisyNetwork(model, "float32", weight_channel=ch, weight_seed=1)
    b = NoisyNetwork(model, "float32", weight_channel=ch, weight_seed=2)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # original untouched
    assert torch.equal(a.logits(X), a.logits(X))  # the fault map persists across calls
    assert not torch.equal(a.logits(X), b.logits(X))
    assert not torch.equal(a.logits(X), NoisyNetwork(model, "float32").logits(X))
    assert {wp.role for wp in a.weight_points} == {"weight", "bias"}


def test_int8_weight_noise_flips_codes():
    ch = BitFlip("int8", 0.05)
    a = NoisyNetwork(cnn(), "int8", calibration=X, weight_channel=ch, weight_seed=0)
    clean = NoisyNetwork(cnn(), "int8", calibration=X)
    assert a.weight_codes["0.weight"].dtype == torch.int8
    assert a.weight_codes["0.bias"].dtype == torch.int32
    assert not torch.equal(a.weight_codes["0.weight"], clean.weight_codes["0.weight"])
    assert torch.equal(
        a.weight_codes["0.bias"], clean.weight_codes["0.bias"]
    )  # int32: not int8's channel


def test_resnet18_runs_noisily_without_edits():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net = NoisyNetwork(model, "float32")
    noisy = net.logits(x, BitFlip("float32", 1e-4, bits="mantissa"), seed=0)
    assert torch.equal(net.logits(x, None), model(x).detach())
    assert not torch.equal(noisy, net.logits(x, None)) and torch.isfinite(noisy).all()
    assert len(net.write_points()) == 60


def test_unsupported_compute_dtype_falls_back_to_float32_with_rounding():
    class HalfShy(nn.Linear):
        def forward(self, x):
            if x.dtype == torch.float16:
                raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'")
            return super().forward(x)

    torch.manual_seed(0)
    model = nn.Sequential(HalfShy(4, 4), nn.ReLU()).eval()
    x = torch.randn(3, 4)
    net = NoisyNetwork(model, "float16")
    with pytest.warns(RuntimeWarning, match="computing in float32"):
        out = net.logits(x)
    assert net.compute_fallback and net.compute_dtype == torch.float32
    with torch.no_grad():
        # weights keep their float16 values; each write is rounded to float16 storage
        linear = nn.Linear(4, 4)
        linear.load_state_dict({k: v.half().float() for k, v in model[0].state_dict().items()})
        expected = torch.relu(linear(x).half().float())
    assert torch.equal(out, expected)


def test_bad_input_is_a_clear_error():
    model = cnn()
    with pytest.raises(ValueError, match="Known formats: .*float32"):
        NoisyNetwork(model, "flaot32")
    with pytest.raises(
        ValueError,
        match="Supported: float64, float32, float16, bfloat16, float8_e4m3, float8_e5m2, int8, int4",
    ):
        NoisyNetwork(model, "int16")
    with pytest.raises(ValueError, match="calibration"):
        NoisyNetwork(model, "int8")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        NoisyNetwork("vgg", "float32")
    with pytest.raises(ValueError, match="compute_dtype"):
        NoisyNetwork(model, "float32", compute_dtype="int8")
    net = NoisyNetwork(model, "float32")
    with pytest.raises(TypeError, match="channel must be"):
        net.evaluate(X, Y, 0.01, seed=0)
    with pytest.raises(TypeError, match="must be a Channel or None"):
        net.evaluate(X, Y, lambda wp: 0.01, seed=0)
    with pytest.raises(ValueError, match="built for float16"):
        net.evaluate(X, Y, BitFlip("float16", 0.01), seed=0)
    with pytest.raises(ValueError, match="same length"):
        net.evaluate(X, Y[:3], None, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        net.evaluate(X, Y, None, seed=0, batch_size=0)


def test_evaluate_clean_accuracy_and_limit():
    model = cnn()
    net = NoisyNetwork(model, "float32")
    with torch.no_grad():
        expected = (model(X).argmax(1) == Y).float().mean().item()
    result = net.evaluate(X, Y, None, seed=0, batch_size=5)
    assert result.accuracy == pytest.approx(expected)
    assert result.nonfinite_fraction == 0.0
    assert net.evaluate(X, Y, None, seed=0, limit=4).n_images == 4
    assert net.evaluate(X, Y, None, seed=0, limit=len(X)).n_images == len(X)
    # More than x holds was evaluated on fewer, quietly; a bad seed passed when noiseless.
    with pytest.raises(ValueError, match=f"asks for {len(X) + 1} images; x holds {len(X)}"):
        net.evaluate(X, Y, None, seed=0, limit=len(X) + 1)
    with pytest.raises(ValueError, match="seed must be an int in"):
        net.evaluate(X, Y, None, seed=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.evaluate(X, Y, None, seed=None)


class _Copy(nn.Module):
    def forward(self, x):
        return x * 1.0


@pytest.mark.parametrize(
    ("fmt", "compute"), [("float32", None), ("float16", "float32"), ("int8", None)]
)
def test_flips_hit_the_stored_bits_at_the_expected_rate(fmt, compute):
    """One write of 40,000 elements at p = 1e-2: flipped stored bits ≈ Binomial(n·width, p)."""
    x = torch.rand(4, 10_000, generator=torch.Generator().manual_seed(0)) + 0.5
    kw = {"calibration": x} if fmt == "int8" else {"compute_dtype": compute}
    net = NoisyNetwork(_Copy(), fmt, **kw)
    stored = {}
    net.observe(x, lambda wp, s: stored.setdefault("clean", s.clone()))
    seen = {}

    class Spy(BitFlip):
        def apply_(self, t, seed):
            super().apply_(t, seed)
            seen["noisy"] = t.clone()
            return t

    net.logits(x, Spy(fmt, 1e-2), seed=0)
    clean, noisy = stored["clean"], seen["noisy"]
    assert (
        clean.dtype
        == noisy.dtype
        == {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}[fmt]
    )
    from memsim.formats import get_format

    f = get_format(fmt)
    diff = clean.view(f.int_view) ^ noisy.view(f.int_view)
    flipped = sum(int(((diff >> k) & 1).sum()) for k in range(f.width))
    n_bits = clean.numel() * f.width
    mean, sd = n_bits * 1e-2, (n_bits * 1e-2 * (1 - 1e-2)) ** 0.5
    assert abs(flipped - mean) < 5 * sd
