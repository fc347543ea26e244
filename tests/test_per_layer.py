"""Per-layer policies: rules reach exactly the named write points, on both sides."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memsim.config import ConfigError
from memsim.device import load_device
from memsim.experiment.layers import layer_channel_for
from memsim.experiment.run import load_experiment
from memsim.formats import get_format
from memsim.inference.network import NoisyNetwork
from memsim.timing import load_memory_params, simulate
from memsim.trace.capture import trace_model
from policies import Baseline, EccSecded, PerLayer, get_policy


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    ).eval()


def flipped_bits_per_point(policy: PerLayer, p: float) -> dict[str, int]:
    """Bits that differ between each write's computed and stored value, per write point."""
    model = small_cnn()
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    net = NoisyNetwork(model, "float32")
    points = net.write_points(x)
    computed: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def spy(name):
        def hook(module, args, out):
            computed[name] = out.detach().clone()  # before the write's channel runs
            outputs[name] = out  # corrupted in place by the write

        return hook

    modules = dict(net.model.named_modules())
    handles = [modules[wp.name].register_forward_hook(spy(wp.name)) for wp in points]
    try:
        net.logits(x, layer_channel_for(policy, "float32", p, p), seed=3)
    finally:
        for h in handles:
            h.remove()
    view = get_format("float32").int_view
    return {
        wp.name: int((computed[wp.name].view(view) != outputs[wp.name].view(view)).sum())
        for wp in points
    }


def test_rules_flip_bits_only_at_the_named_points():
    only = PerLayer(default=None, layers=(("2", Baseline()),))
    flips = flipped_bits_per_point(only, 0.01)
    assert flips["2"] > 0
    assert all(n == 0 for name, n in flips.items() if name != "2")

    globbed = PerLayer(default=None, layers=(("[13]", Baseline()),))
    flips = flipped_bits_per_point(globbed, 0.01)
    assert flips["1"] > 0 and flips["3"] > 0
    assert flips["0"] == flips["2"] == flips["5"] == 0


def test_default_policy_covers_unnamed_points_and_first_rule_wins():
    policy = PerLayer(default=None, layers=(("5", EccSecded()), ("*", Baseline())))
    assert policy.policy_for("5") == EccSecded()
    assert policy.policy_for("0") == Baseline()
    flips = flipped_bits_per_point(PerLayer(default=Baseline()), 0.01)
    assert all(n > 0 for n in flips.values())


def test_energy_is_counted_with_each_layers_policy():
    model = small_cnn()
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    trace = trace_model(model, x, "float32", workload_name="cnn")
    device = load_device()
    policy = get_policy({"kind": "per_layer", "layers": {"2": "ecc_secded", "5": "int8"}})
    plans = [policy.plan(r, device) for r in trace.records]
    for rec, plan in zip(trace.records, plans):
        own = {"2": EccSecded(), "5": get_policy("int8")}.get(rec.name, Baseline())
        assert plan == own.plan(rec, device)
    # the ECC layer writes check cells, the int8 layer 8 bits per element
    assert plans[2].rram_bits == rec_bits(trace, "2") * 9 // 8
    assert plans[-1].rram_bits == trace.records[-1].numel * 8
    res = simulate(plans, trace, load_memory_params("default"), seed=0)
    expected = sum(p.total_energy_pj for p in plans)
    assert res.energy_pj == pytest.approx(expected, rel=1e-9)
    uniform = simulate(
        [Baseline().plan(r, device) for r in trace.records],
        trace,
        load_memory_params("default"),
        seed=0,
    )
    assert res.energy_pj != pytest.approx(uniform.energy_pj)


def rec_bits(trace, name: str) -> int:
    return next(r.total_bits for r in trace.records if r.name == name)


def test_per_layer_tables_load_and_bad_rules_are_refused():
    policy = get_policy(
        {"kind": "per_layer", "default": "ideal", "layers": {"features.*": "write_verify_1"}}
    )
    assert policy.default is None and policy.policy_for("features.3").max_extra_rounds == 1
    with pytest.raises(ConfigError, match="Valid keys: kind, default, layers"):
        get_policy({"kind": "per_layer", "layer": {}})
    with pytest.raises(ValueError, match="only switch to int8"):
        get_policy({"kind": "per_layer", "layers": {"a": "float16"}}).validate("float32")


@pytest.mark.integration
def test_ideal_layers_are_refused_where_the_memory_model_prices_every_write(tmp_path):
    """A per-layer policy whose default is "ideal" loaded, ran its sweep, wrote its points,
    and only then failed in the memory model; now the loader refuses it with the layer named,
    and accepts it once the memory model is off."""
    text = (
        'workloads = ["digits"]\nformats = ["float32"]\n'
        'policies = [{kind = "per_layer", default = "ideal", layers = {"classifier" = "baseline"}}]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(tmp_path / "x.toml", text=text)
    message = str(info.value)
    assert message.startswith("'policies[0]' in ") and "\n" not in message
    assert "layer 'features.0' (and" in message and "memory.enabled = false" in message
    config, _ = load_experiment(tmp_path / "x.toml", text=text + "[memory]\nenabled = false\n")
    assert not config.memory.enabled
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_unknown_layer_name_lists_the_write_points_before_any_output(tmp_path):
    text = (
        'workloads = ["digits"]\nformats = ["float32"]\n'
        'policies = [{kind = "per_layer", label = "mixed", layers = {"featurs.4" = "ecc_secded"}}]\n'
    )
    with pytest.raises(ConfigError) as info:
        load_experiment(tmp_path / "x.toml", text=text)
    message = str(info.value)
    assert "'featurs.4' matches no write point" in message
    assert "Did you mean 'features.4'?" in message
    assert "features.0, features.1" in message and "classifier" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_a_config_built_in_python_gets_the_same_layer_name_check(tmp_path):
    """run_experiment checks what the loader checks: a config built in Python skips the loader."""
    import dataclasses

    from memsim.experiment.config import PolicySpec
    from memsim.experiment.run import RunOptions, run_experiment

    config, _ = load_experiment(tmp_path / "x.toml", text='workloads = ["digits"]\n')
    mixed = {"kind": "per_layer", "default": "baseline", "layers": {"featurs.4": "ecc_secded"}}
    bad = dataclasses.replace(config, policies=(PolicySpec("mixed", mixed),))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"'featurs\.4' matches no write point"):
        run_experiment(bad, RunOptions(out=out, progress=False), sweep_only=True)
    assert not out.exists()
