"""Experiment configs: validation errors name the key, value and file; identity ignores run options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memsim.cli.main import main
from memsim.config import ConfigError, load_toml
from memsim.experiment.config import log_grid, pow10
from memsim.experiment.run import DEFAULT_CONFIG, load_experiment, to_toml
from memsim.experiment.store import ResultsError
from memsim.studies import study_kind
from memsim.studies.bnn import load_study_config


def write(tmp_path, text: str):
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_default_config_loads_with_the_standard_grid():
    config, run = load_experiment()
    ps = config.grid.ps()
    assert ps[0] == pytest.approx(1e-8) and ps[-1] == pytest.approx(1e-1)
    assert len(ps) == 22  # 3 points per decade over 7 decades
    assert config.sweep.repeats == 5 and config.sweep.coupled
    assert {"float32", "int8"} <= set(config.formats)
    assert len(config.policies) >= 3 and run.workers == 1


def test_the_grid_does_not_depend_on_this_machines_power(monkeypatch):
    """The grid is computed in decimal arithmetic: NumPy's and libm's power, which differ in the
    last bit between processors, cannot move a point (NumPy's gave 9.999999999999999e-06 for
    1e-05 with AVX-512), and the decades are exact."""
    config, _ = load_experiment(overrides=["grid.p_min=1e-6", "grid.points_per_decade=1"])
    want = (1e-06, 1e-05, 1e-04, 1e-03, 1e-02, 1e-01)
    assert config.grid.ps() == want

    def one_ulp_down(*args, **kwargs):
        return np.nextafter(real_logspace(*args, **kwargs), 0.0)

    real_logspace = np.logspace
    monkeypatch.setattr(np, "logspace", one_ulp_down)
    monkeypatch.setattr(math, "pow", lambda x, y: np.nextafter(x**y, 0.0))
    assert config.grid.ps() == want
    grid = log_grid(3e-8, 0.5, 9)
    assert grid[0] == 3e-8 and grid[-1] == 0.5
    ratios = np.diff(np.log10(grid))
    assert ratios == pytest.approx(np.full(8, math.log10(0.5 / 3e-8) / 8), rel=1e-12)
    assert pow10(-5.0) == 1e-05 and pow10(-2.5) == pytest.approx(10**-2.5, rel=1e-15)


def test_malformed_toml_names_the_line(tmp_path):
    path = write(tmp_path, 'name = "x"\n\nseed = = 0\n')
    with pytest.raises(ConfigError, match=r"line 3") as exc:
        load_experiment(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 1\n", "colour"),
        ("[sweep]\nrepeat = 3\n", "sweep.repeat"),
        ("[grid]\np_mx = 0.1\n", "grid.p_mx"),
    ],
)
def test_unknown_keys_are_named_with_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as exc:
        load_experiment(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("[grid]\np_max = 2.0\n", "p_max", "2.0"),
        ("[grid]\np_min = 0.0\n", "p_min", "0.0"),
        ("[grid]\nvalues = [1e-3, 1.5]\n", "values[1]", "1.5"),
        ("[grid]\nvalues = [-1e-3]\n", "values[0]", "-0.001"),
        ("[sweep]\nrepeats = 0\n", "repeats", "0"),
    ],
)
def test_bad_values_name_key_value_and_file(tmp_path, text, key, value):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_experiment(path)
    msg = str(exc.value)
    assert key in msg and value in msg and str(path) in msg


def test_unknown_policy_and_workload_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"policies\[1\].*write_verfy"):
        load_experiment(write(tmp_path, 'policies = ["baseline", "write_verfy"]\n'))
    with pytest.raises(ConfigError, match=r"workloads\[0\]"):
        load_experiment(write(tmp_path, 'workloads = ["digitz"]\n'))


def test_run_options_do_not_change_the_identity(tmp_path):
    base, _ = load_experiment(write(tmp_path, "seed = 3\n"))
    more, run = load_experiment(write(tmp_path, "seed = 3\n[run]\nworkers = 4\n"))
    assert run.workers == 4
    assert base.digest() == more.digest()
    other, _ = load_experiment(write(tmp_path, "seed = 4\n"))
    assert other.digest() != base.digest()


def test_resolved_config_loads_back_to_the_same_experiment(tmp_path):
    config, _ = load_experiment(
        overrides=[
            "sweep.repeats=2",
            'policies=["baseline", {kind="write_verify", max_extra_rounds=1, label="wv1"}]',
        ]
    )
    assert config.sweep.repeats == 2 and config.policies[1].label == "wv1"
    again, _ = load_experiment(write(tmp_path, to_toml(config.to_toml_data())))
    assert again.digest() == config.digest()


def test_cli_reports_bad_config_in_one_line(tmp_path, capsys):
    path = write(tmp_path, "[sweep]\nrepeats = 0\n")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "repeats" in err and "Traceback" not in err


def test_results_error_is_a_value_error():
    # The CLI turns ValueErrors into one clean line; a refused folder must be one.
    assert issubclass(ResultsError, ValueError)
    assert DEFAULT_CONFIG.is_file()


def _shipped(pattern: str) -> list[str]:
    return sorted(
        str(p.relative_to(DEFAULT_CONFIG.parent)) for p in DEFAULT_CONFIG.parent.glob(pattern)
    )


_ALL = [*_shipped("*.toml"), *_shipped("labs/*.toml"), *_shipped("cifar/*.toml")]
# Study configs (a [study] table) are validated by their study's loader.
STUDIES = [n for n in _ALL if study_kind(DEFAULT_CONFIG.parent / n) is not None]
# Search configs (a [search] table) are validated by tests/test_search.py.
SEARCHES = [n for n in _ALL if "search" in load_toml(DEFAULT_CONFIG.parent / n)]
SHIPPED = [n for n in _ALL if n not in STUDIES and n not in SEARCHES]


@pytest.mark.parametrize("name", STUDIES)
def test_every_shipped_study_config_validates(name):
    assert study_kind(DEFAULT_CONFIG.parent / name) == "bnn"
    config = load_study_config(DEFAULT_CONFIG.parent / name)
    assert config.repeats >= 1


def test_shipped_config_lists_are_not_empty():
    assert len(SHIPPED) >= 8 and STUDIES == ["labs/lab5_bnn.toml"]
    assert SEARCHES == ["labs/lab7_search.toml"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_experiment_config_validates(name):
    config, _ = load_experiment(DEFAULT_CONFIG.parent / name)
    assert config.grid.ps() and config.sweep.repeats >= 1


def test_shipped_configs_cover_the_cifar_study():
    assert {
        "cifar/vgg_formats.toml",
        "cifar/noisy_bits.toml",
        "cifar/noisy_training.toml",
        "cifar/energy_accuracy.toml",
    } <= set(SHIPPED)
    config, _ = load_experiment(DEFAULT_CONFIG.parent / "cifar/vgg_formats.toml")
    assert [w.name for w in config.workloads] == ["vgg_A", "vgg_B", "vgg_D", "vgg_E"]
    assert set(config.formats) == {"float16", "bfloat16", "float32", "float64", "int8"}


def test_list_shows_plugins_and_presets(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "workloads:",
        "  digits",
        "  baseline",
        "  float32",
        "  nominal",
        "memory:",
        "  default",
        "  labs/lab1_noise_curve",
        "  cifar/vgg_formats",
    ):
        assert expected in out, expected
    assert main(["list", "formats"]) == 0
    assert "policies:" not in capsys.readouterr().out


def test_shipped_configs_can_be_named_without_a_path():
    config, _ = load_experiment("labs/lab1_noise_curve")
    assert config.name == "lab1-noise-curve"


def test_the_default_experiment_keeps_its_identity():
    # Keys added since (report, compute_dtype, granularity) are left out at their defaults, so
    # results folders of the default experiment made by earlier versions are still resumable.
    config, _ = load_experiment()
    assert config.digest() == "736fecfaf97c73b8"


# ------------------------------------------- sweep.compute_dtype where no float is stored

INT_ONLY = ['formats=["int8", "int4"]', 'policies=["baseline", "write_verify"]']


def test_compute_dtype_is_refused_where_every_stored_format_is_an_integer():
    """int8/int4 networks compute in float32 from their codes whatever compute_dtype says:
    the option changed only the experiment's hash."""
    with pytest.raises(ConfigError) as info:
        load_experiment(overrides=[*INT_ONLY, 'sweep.compute_dtype="float32"'])
    text = str(info.value)
    assert "\n" not in text and text.startswith("'sweep.compute_dtype' in ")
    assert "'float32'" in text and "(int4, int8)" in text and "no effect" in text


@pytest.mark.parametrize(
    "overrides",
    [
        [*INT_ONLY],  # the default, "storage"
        ['formats=["int8", "float16"]', 'sweep.compute_dtype="float32"'],  # float16 computes in it
        # A format policy stores the int8 sweep as float16: the option acts there.
        ['formats=["int8"]', 'policies=[{kind="format", to="float16"}]',
         'sweep.compute_dtype="float32"'],
    ],
)  # fmt: skip
def test_compute_dtype_is_kept_where_a_network_computes_in_a_float(overrides):
    config, _ = load_experiment(overrides=overrides)
    assert config.sweep.compute_dtype in ("storage", "float32")


def test_compute_dtype_flag_on_an_integer_experiment_is_one_line_and_writes_nothing(
    tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["run", "--out", str(out), "--compute-dtype", "float64", "--no-progress"]
    assert main([*argv, *(x for item in INT_ONLY for x in ("--set", item))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memsim run: error: 'sweep.compute_dtype'")
    assert "--compute-dtype" in err[0] and "'float64'" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("value", ["1", "0", "1001", "2.5"])
def test_latency_draws_out_of_range_names_the_key(value):
    """The spread of latency needs at least two simulated inferences."""
    with pytest.raises(ConfigError, match=rf"memory\.latency_draws.*Got {value}"):
        load_experiment(overrides=[f"memory.latency_draws={value}"])
