"""The mixed-policy search: MILP proposals, the refine loop against brute force, the verb."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from memsim.device import load_device
from memsim.experiment.layers import layer_channel_for
from memsim.inference.network import NoisyNetwork
from memsim.studies.assign import pareto_front, predicted, propose, search
from memsim.trace.capture import trace_model
from policies import PerLayer, get_policy


def brute_force_min(d, c, budget, exclude=()):
    best = None
    for a in itertools.product(range(d.shape[1]), repeat=d.shape[0]):
        if a in exclude or predicted(d, a) > budget + 1e-12:
            continue
        if best is None or predicted(c, a) < predicted(c, best) - 1e-12:
            best = a
    return best


@pytest.mark.parametrize("seed", range(6))
def test_propose_is_the_cheapest_assignment_within_budget(seed):
    rng = np.random.default_rng(seed)
    d = rng.random((4, 3)) * 0.05
    c = rng.random((4, 3)) * 10
    budget = float(rng.random() * 0.1)
    got = propose(d, c, budget)
    want = brute_force_min(d, c, budget)
    assert (got is None) == (want is None)
    if want is not None:
        assert predicted(c, got) == pytest.approx(predicted(c, want))
        assert predicted(d, got) <= budget + 1e-9
        again = propose(d, c, budget, exclude=[got])
        second = brute_force_min(d, c, budget, exclude={got})
        assert (again is None) == (second is None) and again != got
        if second is not None:
            assert predicted(c, again) == pytest.approx(predicted(c, second))


def test_propose_respects_the_cost_bound_and_infeasible_budgets():
    d = np.array([[0.1, 0.0], [0.1, 0.0]])
    c = np.array([[1.0, 3.0], [1.0, 3.0]])
    assert propose(d, c, 0.1) in {(0, 1), (1, 0)}
    assert propose(d, c, 0.1, cost_below=4.0) is None
    assert propose(d, c, math.inf) == (0, 0)
    assert propose(np.full((2, 2), 0.1), c, 0.05) is None


def test_pareto_front_keeps_only_undominated_points():
    from memsim.studies.assign import Verified

    pts = [
        Verified((0,), 0.9, 1.0, "u", False),
        Verified((1,), 0.95, 2.0, "u", True),
        Verified((2,), 0.93, 3.0, "u", False),
        Verified((3,), 0.99, 4.0, "u", True),
    ]
    assert [v.assignment for v in pareto_front(pts)] == [(0,), (1,), (3,)]


# --------------------------------------------------------------------------- the headline


def search_rows(best: float, uniform: float, *, se: float = 0.0, n_images=10_000):
    """A search.csv of a per-layer winner and the uniform policy it is compared with."""
    rows = pd.DataFrame(
        {
            "workload": "w",
            "label": ["mix:01", "all:a"],
            "uniform": [False, True],
            "best": [True, False],
            "best_uniform": [False, True],
            "accuracy": [best, uniform],
            "accuracy_se": se,
            "meets_target": True,
            "cost": [80.0, 100.0],
            "clean_accuracy": 0.95,
            "target_accuracy": 0.99 * 0.95,
            "objective": "energy",
        }
    )
    return rows if n_images is None else rows.assign(n_images=n_images)


def test_headline_does_not_resolve_two_images_when_repeats_agree():
    """Repeats that agree exactly (spread 0) made any difference "resolved" and the margin
    infinitely many standard errors: two images on 10,000 are within the images' own error."""
    from memsim.fit import shared_images_se
    from memsim.report.search import headline

    h = headline(search_rows(0.9400, 0.9402))
    assert not h["accuracy_resolved"]
    bound = float(shared_images_se(0.94, 10_000) + shared_images_se(0.9402, 10_000))
    assert h["accuracy_difference_se"] == pytest.approx(bound)  # a sum: shared images
    assert h["best_accuracy_se"] == pytest.approx(float(shared_images_se(0.94, 10_000)))
    assert math.isfinite(h["margin_se"])
    # the margin's error adds the target's (0.99 × the clean accuracy on the same images)
    want = float(shared_images_se(0.94, 10_000) + 0.99 * shared_images_se(0.95, 10_000))
    assert h["margin_stderr"] == pytest.approx(want)
    assert h["margin_se"] == pytest.approx((0.94 - 0.99 * 0.95) / want)


def test_headline_resolves_a_large_difference_and_keeps_a_larger_spread():
    from memsim.report.search import headline

    h = headline(search_rows(0.90, 0.95))  # 500 images apart
    assert h["accuracy_resolved"] and h["accuracy_difference"] == pytest.approx(-0.05)
    wide = headline(search_rows(0.90, 0.95, se=0.02))  # a spread above the images' bound
    assert wide["best_accuracy_se"] == 0.02 and not wide["accuracy_resolved"]


def test_headline_of_a_folder_without_image_counts_does_not_invent_a_finding():
    """search.csv files written before n_images was recorded: a 0 se is unknown, not exact."""
    from memsim.report.search import headline

    h = headline(search_rows(0.9400, 0.9402, n_images=None))
    assert not h["accuracy_resolved"]
    assert math.isnan(h["margin_se"])


def test_objective_sds_follow_the_latency_draw():
    """Latency enters latency and, through standby (leakage × latency), total energy: the
    objectives' spreads are their first-order change with the one latency draw."""
    from memsim.studies.search import objective_sds, objectives

    row = {
        "energy_pj_per_inference": 50.0,
        "total_energy_pj_per_inference": 100.0,
        "standby_energy_pj_per_inference": 40.0,
        "latency_ns_per_inference": 1000.0,
        "latency_ns_sd": 10.0,
        "area_mm2": 2.0,
    }
    sds = objective_sds(row)
    assert sds["area"] == 0 and sds["latency"] == pytest.approx(10.0)
    assert sds["energy"] == pytest.approx(0.4)  # the standby share 0.4 of a 1 % move
    # the same from a finite difference of the objectives along the latency
    h = 1e-3
    moved = dict(row, latency_ns_per_inference=1000.0 * (1 + h))
    moved["standby_energy_pj_per_inference"] = 40.0 * (1 + h)
    moved["total_energy_pj_per_inference"] = 100.0 + 40.0 * h
    base, up = objectives(row), objectives(moved)
    for name in ("energy", "latency", "energy_latency", "energy_latency_area"):
        slope = (up[name] - base[name]) / (1000.0 * h) * 10.0  # per sd of latency
        assert sds[name] == pytest.approx(slope, rel=2e-3), name
    fixed = dict(row, latency_ns_sd=0.0)
    assert all(v == 0 for v in objective_sds(fixed).values())


def test_headline_resolves_a_cost_ratio_only_beyond_its_spread():
    from memsim.report.search import _ratio_text, headline

    rows = search_rows(0.94, 0.94).assign(cost=[99.0, 100.0])
    fixed = headline(rows.assign(cost_sd=0.0))
    assert fixed["cost_ratio"] == pytest.approx(0.99) and fixed["cost_resolved"]
    noisy = headline(rows.assign(cost_sd=[0.5, 0.5]))  # 0.5 % each: 1 % within 2 × 0.7 %
    assert noisy["cost_ratio_sd"] == pytest.approx(0.99 * math.hypot(0.5 / 99, 0.5 / 100))
    assert not noisy["cost_resolved"]
    # sds of 5 draws each: Student's t with 4 degrees of freedom (2.78), not 2
    sd = 0.99 * math.hypot(0.3 / 99, 0.3 / 100)  # 1 % away: 2.4 sd, beyond 2, within 2.78
    five = headline(rows.assign(cost_sd=[0.3, 0.3], cost_draws=5))
    assert five["cost_ratio_sd"] == pytest.approx(sd) and 2 < 0.01 / sd < 2.776
    assert five["cost_factor"] == pytest.approx(2.776, abs=1e-3) and not five["cost_resolved"]
    assert "within 2.78 sd of 1" in _ratio_text(five)
    assert not headline(rows)["cost_resolved"]  # no cost_sd recorded: not a finding
    # random rounds whose draws all agreed: a spread of 0 that does not make the cost fixed
    agreed = headline(rows.assign(cost_sd=0.0, cost_draws=[5, 1]))
    assert not agreed["cost_resolved"]
    assert "no spread seen in 5 draws: not judged" in _ratio_text(agreed)
    assert "fixed costs" in _ratio_text(headline(rows.assign(cost_sd=0.0, cost_draws=1)))


def test_search_identity_ignores_latency_draws_at_its_default():
    """Searches stored before memory.latency_draws existed keep their identity (their folders
    resume); another value is another search."""
    from memsim.experiment.store import config_hash
    from memsim.studies.search import load_search, search_digest, to_dict

    config, options, _ = load_search("configs/search/digits.toml")
    before = config.to_dict()
    del before["memory"]["latency_draws"]
    del before["sweep"]["flush_denormals"]  # likewise, off by default
    assert search_digest(config, options) == config_hash(
        {"experiment": before, "search": to_dict(options)}
    )
    more, options, _ = load_search("configs/search/digits.toml", ["memory.latency_draws=7"])
    assert search_digest(more, options) != search_digest(config, options)
    flushed, options, _ = load_search("configs/search/digits.toml", ["sweep.flush_denormals=true"])
    assert search_digest(flushed, options) != search_digest(config, options)


# --------------------------------------------------------------------------- a real network

CANDIDATES = ["sram_exponent", "ecc_secded", "write_verify_3"]
P = 1e-2


@pytest.fixture(scope="module")
def small_problem():
    """A 3-write MLP labelled by its own clean predictions; verify = a real noisy evaluation."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 6)).eval()
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(dim=1)
    net = NoisyNetwork(model, "float32")
    names = [wp.name for wp in net.write_points(x)]
    cands = [get_policy(c) for c in CANDIDATES]
    trace = trace_model(model, x[:64], "float32", workload_name="mlp")
    device = load_device()
    energy = np.array(
        [[cand.plan(rec, device).total_energy_pj for cand in cands] for rec in trace.records]
    )

    def accuracy(assignment) -> float:
        rules = tuple((n, cands[k]) for n, k in zip(names, assignment) if k is not None)
        policy = PerLayer(default=None, layers=rules)
        accs = [
            net.evaluate(x, y, layer_channel_for(policy, "float32", P, P), seed=s).accuracy
            for s in range(3)
        ]
        return float(np.mean(accs))

    cache: dict = {}

    def verify(a):
        if a not in cache:
            cache[a] = (accuracy(a), predicted(energy, a))
        return cache[a]

    n = len(names)
    deg = np.array(
        [
            [1.0 - accuracy(tuple(k if i == layer else None for i in range(n))) for k in range(3)]
            for layer in range(n)
        ]
    )
    return names, deg, energy, verify


def test_search_finds_the_brute_force_optimum_on_a_small_network(small_problem):
    names, deg, energy, verify = small_problem
    assert names == ["0", "1", "2"]
    target = 0.97
    everything = {a: verify(a) for a in itertools.product(range(3), repeat=3)}
    passing = {a: cost for a, (acc, cost) in everything.items() if acc >= target}
    optimum = min(passing.values())
    # The problem is not trivial: the cheapest uniform policy fails or costs more.
    uniform = [everything[(k,) * 3] for k in range(3)]
    best_uniform = min(cost for acc, cost in uniform if acc >= target)
    assert optimum < best_uniform
    assert any(acc < target for acc, _ in uniform)

    result = search(deg, energy, target=target, clean_accuracy=1.0, verify=verify)
    assert result.best is not None
    assert result.best.cost == pytest.approx(optimum)
    assert result.best.accuracy >= target
    assert result.best_uniform.cost == pytest.approx(best_uniform)
    # fewer verifications than brute force
    assert len(result.verified) < len(everything)


# --------------------------------------------------------------------------- the verb

SEARCH_CONFIG = """
name = "search-test"
workloads = ["digits"]
formats = ["float32"]
policies = ["baseline", "sram_exponent", "write_verify_1"]
operating_p = 3e-3
[sweep]
images = 90
[memory]
trace_images = 4
[search]
repeats = 2
target = 0.97
sensitivity = false
max_verifications = 6
"""


@pytest.mark.integration
def test_search_verb_runs_resumes_and_reports(tmp_path, capsys):
    from memsim.cli.main import main

    cfg = tmp_path / "search.toml"
    cfg.write_text(SEARCH_CONFIG)
    out = tmp_path / "out"
    assert main(["search", str(cfg), "--out", str(out), "--no-progress"]) == 0
    log = (out / "points.jsonl").read_text().splitlines()
    search_csv = pd.read_csv(out / "search.csv")
    assert search_csv["uniform"].sum() == 3
    # every accuracy carries an error never below the 90 shared images' binomial one
    from memsim.fit import shared_images_se

    assert (search_csv["n_images"] == 90).all()
    floor = shared_images_se(search_csv["accuracy"].to_numpy(), 90)
    assert (search_csv["accuracy_se"].to_numpy() >= floor - 1e-15).all()
    assert (search_csv["accuracy_se"] >= search_csv["accuracy_spread_se"].fillna(0)).all()
    inside = search_csv["accuracy"].between(
        search_csv["accuracy_ci_low"], search_csv["accuracy_ci_high"]
    )
    assert inside.all() and (search_csv["accuracy_ci_high"] > search_csv["accuracy_ci_low"]).all()
    deg = pd.read_csv(out / "degradation.csv")
    assert (deg["n_images"] == 90).all()
    clean_se = shared_images_se(search_csv["clean_accuracy"].iloc[0], 90)
    assert (deg["degradation_se"] >= clean_se + shared_images_se(deg["accuracy"], 90) - 1e-12).all()
    best = search_csv[search_csv["best"]]
    assert len(best) <= 1
    if len(best):
        assert bool(best["meets_target"].iloc[0])
        meeting = search_csv[search_csv["meets_target"]]
        assert best["cost"].iloc[0] == meeting["cost"].min()
    report = (out / "report.md").read_text()
    assert "Verified assignments" in report and "Degradation at the operating point" in report
    # a second run resumes: nothing new is evaluated, the same choice is made
    assert main(["search", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert (out / "points.jsonl").read_text().splitlines() == log
    pd.testing.assert_frame_equal(pd.read_csv(out / "search.csv"), search_csv)
    # `memsim report` re-creates the search's own report, not an experiment report over it
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == report
    assert not (out / "summary.csv").exists()
    capsys.readouterr()
    assert main(["report", str(out), "--scale", "p"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is a mixed-policy search folder: --scale and --bootstrap refit" in err
    assert main(["report", str(out), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "re-created in place; drop --out" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()
    (out / "degradation.csv").unlink()  # as if the search had stopped before its tables
    assert main(["report", str(out)]) == 2
    assert "has not finished (no degradation.csv)" in capsys.readouterr().err
    assert (out / "report.md").read_text() == report


@pytest.mark.integration
def test_search_config_errors_come_before_any_output(tmp_path, capsys, monkeypatch):
    from memsim.cli.main import main
    from memsim.studies import search as study

    # an objective whose column the memory model does not provide (yet)
    monkeypatch.setitem(study.OBJECTIVES, "made_up", (("made_up_mm2",),))
    cfg = tmp_path / "search.toml"
    cfg.write_text(SEARCH_CONFIG.replace("[search]", '[search]\nobjective = "made_up"'))
    out = tmp_path / "out"
    assert main(["search", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "made_up_mm2" in capsys.readouterr().err
    assert not out.exists()
    cfg.write_text(SEARCH_CONFIG.replace("target = 0.97", "target = 1.5"))
    assert main(["search", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "'target'" in capsys.readouterr().err
    assert not out.exists()
    # A bad value from --set is said to come from there, as for experiments
    cfg.write_text(SEARCH_CONFIG)
    argv = ["search", str(cfg), "--set", "search.target=2", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{cfg} (with --set search.target=2)" in err and "'target'" in err
    assert not out.exists()


@pytest.mark.integration
def test_a_search_config_built_in_python_is_refused_as_the_loader_refuses_it(tmp_path):
    """run_search checks what parse_search checks: a config built in Python skips the loader."""
    import dataclasses

    from memsim.config import ConfigError
    from memsim.studies.search import load_search, run_search

    cfg = tmp_path / "search.toml"
    cfg.write_text(SEARCH_CONFIG)
    config, options, run = load_search(cfg)
    out = tmp_path / "out"
    run = dataclasses.replace(run, out=out, progress=False)
    two_formats = dataclasses.replace(config, formats=("float32", "int8"))
    with pytest.raises(ConfigError, match="A search runs one storage format; .* float32, int8"):
        run_search(two_formats, options, run)
    two_points = dataclasses.replace(config, conditions=("nominal", "low_energy"))
    with pytest.raises(ConfigError, match="A search runs at one operating point"):
        run_search(two_points, options, run)
    assert not out.exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ('masks=["exponent"]', "flips every bit of its candidates' writes"),
        ("memory.enabled=false", "prices its candidates with the memory model"),
        ("sweep.repeats=7", "'sweep.repeats' in .*: a search does not use it"),
        ("adaptive.enabled=false", "'adaptive.enabled' in .*: a search does not use it"),
        ('memory.preset="bogus"', "'memory.preset' in .*Unknown memory preset 'bogus'"),
    ],
)
def test_experiment_keys_a_search_would_ignore_are_refused(override, expected):
    """A search's masks, memory switch, sweep repeats and adaptive switch were accepted and
    ignored (and the memory preset was checked only when the run priced the candidates)."""
    from memsim.config import ConfigError
    from memsim.studies.search import load_search

    with pytest.raises(ConfigError, match=expected):
        load_search("search/digits", [override])


@pytest.mark.parametrize("verb", ["run", "sweep"])
def test_run_on_a_search_config_names_the_search_verb(tmp_path, verb, capsys):
    """`memsim run` on a search config said only "Unknown key 'search'"."""
    from memsim.cli.main import main

    cfg = tmp_path / "search.toml"
    cfg.write_text(SEARCH_CONFIG)
    assert main([verb, str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a mixed-policy search config" in err and f"`memsim search {cfg}`" in err
    assert not (tmp_path / "out").exists()


def test_search_on_a_config_without_a_search_table_is_refused(tmp_path, capsys):
    """A plain experiment config started a search with default settings, silently."""
    from memsim.cli.main import main

    cfg = tmp_path / "plain.toml"
    cfg.write_text(SEARCH_CONFIG.split("[search]")[0])
    assert main(["search", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "has no [search] table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["search/digits", "search/vgg_a", "labs/lab7_search"])
def test_shipped_search_configs_validate(name):
    from memsim.studies.search import load_search

    config, options, _ = load_search(name)
    assert len(config.formats) == 1 and options.target < 1
    assert len(config.policies) >= 3


def test_sensitivity_figure_draws_an_open_interval_to_the_edge_of_the_range(tmp_path, monkeypatch):
    """A midpoint whose interval reaches beyond the swept range had a zero-length bar there
    (NaN bound filled with 0): it now reaches the range's edge and ends in a triangle."""
    import matplotlib.pyplot as plt

    from memsim.report.search import plot_sensitivity

    table = pd.DataFrame(
        {
            "workload": ["w", "w"],
            "layer": ["a", "b"],
            "bits_written": [10, 20],
            "p50": [1e-3, 1e-2],
            "p50_ci_low": [5e-4, 8e-3],
            "p50_ci_high": [2e-3, math.nan],
            "p50_ci_open": ["", "high"],
            "p_min": [1e-7, 1e-7],
            "p_max": [1e-1, 1e-1],
        }
    )
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig: figures.append(fig))
    plot_sensitivity(table, tmp_path / "s.png")
    ax = next(a for a in figures[0].axes if a.get_yscale() == "log" and a.lines)
    tops = [max(line.get_ydata()) for line in ax.lines if line.get_marker() == "^"]
    assert tops == [pytest.approx(0.1)]
    segments = [seg for c in ax.collections for seg in c.get_segments()]
    assert any(seg[:, 1].max() == pytest.approx(0.1) for seg in segments)
