"""Bad input never gives a silent wrong result, a traceback or an orphan: one test per class.

Classes: validation skipped on a fast path; corrupt data; results folders that are not what
they seem; checks that come too late; no upper bounds; orphan workers; round trips.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import sweep_row
from torch import nn

from memsim.cli.main import main
from memsim.config import ConfigError, loads_toml, to_toml
from memsim.experiment.load import load_experiment, parse_experiment
from memsim.experiment.run import RunOptions, default_out, run_experiment
from memsim.experiment.store import (
    EXPERIMENT_FILE,
    POINTS_CSV,
    POINTS_LOG,
    ResultsError,
    ResultsStore,
    load_points,
    read_experiment,
    write_csv_atomic,
)
from memsim.rng import child_seed
from workloads.checkpoints import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    verify_reference,
)

# --------------------------------------------------------------------- validation on fast paths


@pytest.mark.parametrize("p", ["-1", "nan", "1.5", "inf"])
def test_eval_refuses_a_bad_p_before_any_shortcut(p, capsys):
    # p <= 0 used to skip the channel (and its checks) and report the noise-free accuracy.
    with pytest.raises(SystemExit) as exc:
        main(["eval", "digits", f"--p={p}", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--p" in err and p in err and "Traceback" not in err


def test_flip_demo_and_eval_share_the_noise_options(capsys):
    for verb in (["eval", "digits"], ["flip-demo"]):
        with pytest.raises(SystemExit):
            main([*verb, "--p10=-0.5"])
        assert "--p10" in capsys.readouterr().err


def test_python_api_validates_like_the_loader(tmp_path):
    config, _ = load_experiment()
    bad = dataclasses.replace(config, sweep=dataclasses.replace(config.sweep, engine="fastest"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="sweep.engine"):
        run_experiment(bad, RunOptions(out=out, progress=False))
    assert not out.exists()


def test_report_bootstrap_is_checked_like_the_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # argparse's own exit: the bound is the [fit] one
        main(["report", str(tmp_path), "--bootstrap", "-1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--bootstrap" in err and "[0, 100000]" in err and "'-1'" in err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------- corrupt data


def test_checkpoint_with_inverted_bytes_is_refused(tmp_path):
    model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 10))
    path = save_checkpoint(tmp_path / "m.pt", model, arch="x", test_acc=0.9)
    assert set(load_checkpoint(path)["state_dict"]) == set(model.state_dict())
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)


def test_reference_checkpoint_hash_is_checked(tmp_path):
    fake = tmp_path / "vgg_A.pt"  # a reference name with other content
    torch.save({"arch": "A", "state_dict": {}}, fake)
    with pytest.raises(CheckpointError, match="vgg_A.pt is corrupted"):
        verify_reference(fake)


# ----------------------------------------------------------------------------- results folders

CONFIG = {
    "workloads": [{"name": "w", "label": "w"}],
    "formats": ["float32"],
    "policies": [{"label": "baseline", "spec": "baseline"}],
    "masks": ["all"],
}


def _row(p: float, repeat: int, accuracy: float = 0.5, workload: str = "w") -> dict:
    return sweep_row(p, repeat, accuracy, workload=workload)


def _folder(tmp_path: Path, n: int = 4) -> Path:
    with ResultsStore.open(tmp_path, config=CONFIG, digest="d1") as store:
        for i in range(n):
            store.append(_row(10.0 ** -(i + 2), 0))
        write_csv_atomic(tmp_path / POINTS_CSV, store.points_frame())
    return tmp_path


def test_report_never_overwrites_points_with_less(tmp_path, capsys):
    folder = _folder(tmp_path)
    before = (folder / POINTS_CSV).read_text()
    (folder / POINTS_LOG).write_text("")
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert POINTS_CSV in err and "Traceback" not in err
    assert (folder / POINTS_CSV).read_text() == before


def test_rows_of_another_experiment_are_refused(tmp_path):
    folder = _folder(tmp_path)
    other = {**_row(0.5, 3), "config_hash": "other"}
    with open(folder / POINTS_LOG, "a") as fh:
        fh.write(json.dumps(other) + "\n")
    with pytest.raises(ResultsError, match=rf"{POINTS_LOG} line 5 .*another experiment"):
        load_points(folder, read_experiment(folder))
    with pytest.raises(ResultsError, match="another experiment"):
        ResultsStore.open(folder, config=CONFIG, digest="d1")


def test_copied_in_points_csv_of_another_experiment_is_refused(tmp_path):
    folder = _folder(tmp_path)
    (folder / POINTS_LOG).unlink()
    foreign = _row(1e-3, 0, workload="vgg")  # labels this experiment does not have
    text = (folder / POINTS_CSV).read_text().splitlines()
    header = text[0].split(",")
    values = {**foreign, "config_hash": "d1"}
    text.append(",".join(str(values.get(c, "")) for c in header))
    (folder / POINTS_CSV).write_text("\n".join(text) + "\n")
    with pytest.raises(ResultsError, match=rf"{POINTS_CSV} line 6: workload 'vgg'"):
        load_points(folder, read_experiment(folder))


@pytest.mark.parametrize(
    "name, text, expected",
    [
        (EXPERIMENT_FILE, "{not json", f"{EXPERIMENT_FILE} line 1"),
        (EXPERIMENT_FILE, "[1, 2]", "JSON object"),
        (POINTS_LOG, '{"a": 1}\n[1]\n{"b": 2}\n', f"{POINTS_LOG} line 1 lacks"),
        (POINTS_LOG, "x\n{}\n", f"{POINTS_LOG} line 1 is corrupt"),
    ],
)
def test_malformed_store_files_name_file_and_line(tmp_path, capsys, name, text, expected):
    folder = _folder(tmp_path)
    (folder / name).write_text(text)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------- checks that come late


def test_bad_values_are_refused_at_load():
    for item, key in [
        ('sweep.split="validation"', "split"),
        ('sweep.engine="fastest"', "sweep.engine"),
        ('workloads=[{name="digits", options={depth=3}}]', "workloads[0].options"),
    ]:
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_experiment(overrides=[item])


def test_missing_checkpoint_and_device_are_refused_before_the_folder_is_claimed(tmp_path):
    config, _ = load_experiment(overrides=['workloads=[{name="digits", checkpoint="/no/such.pt"}]'])
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="checkpoint"):
        run_experiment(config, RunOptions(out=out, progress=False))
    assert not out.exists()
    if not torch.cuda.is_available():
        config, _ = load_experiment()
        with pytest.raises(ValueError, match="no CUDA GPU"):
            run_experiment(config, RunOptions(out=out, device="cuda", progress=False))
        assert not out.exists()


def test_device_cuda_without_gpu_is_one_line_exit_2_and_writes_nothing(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "memsim", "run", "--out", str(out), "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "cuda" in proc.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------------- upper bounds


@pytest.mark.parametrize(
    "item",
    [
        "sweep.repeats=1000000000",
        "fit.bootstrap=1000000000",
        "sweep.images=100000000000",
        "seed=18446744073709551616",  # 2**64: used to equal seed 0
        "grid.points_per_decade=1000 sweep.repeats=10000",  # 7001 p × 10^4 repeats per curve
    ],
)
def test_sizes_and_seeds_are_bounded(item):
    with pytest.raises(ConfigError):
        load_experiment(overrides=item.split())


def test_seed_beyond_64_bits_is_refused_not_wrapped():
    assert child_seed(2**64 - 1, "a") != child_seed(0, "a")
    with pytest.raises(ValueError, match="2\\*\\*64"):
        child_seed(2**64, "a")


# --------------------------------------------------------------------------------------- orphans


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_killing_the_main_process_leaves_no_worker(tmp_path):
    cmd = [sys.executable, "-m", "memsim", "sweep", "default", "--out", str(tmp_path / "o"),
           "--workers", "2", "--no-progress", "--set", "sweep.repeats=50", "--set",
           "sweep.images=64", "--set", "memory.enabled=false"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            workers = {
                pid
                for pid in _descendants(proc.pid)
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            }
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the sweep did not start two workers"
        everything = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in everything):
            time.sleep(0.2)
        assert not [p for p in everything if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _descendants(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# ----------------------------------------------------------------------------------- round trips


def test_written_config_loads_back_with_characters_outside_the_bmp():
    config, _ = load_experiment(
        overrides=['description="noise 🧪 study — naïve \\"quoted\\" \\\\ tab\\t"']
    )
    text = to_toml(config.to_toml_data())
    again, _ = parse_experiment(loads_toml(text))
    assert again == config and "🧪" in text


def test_name_cannot_send_the_default_folder_outside_runs():
    config, _ = load_experiment(overrides=['name="../../x"'])
    out = default_out(config)
    assert out.parent == Path("runs") and ".." not in out.parts and "/" not in out.name


def test_unwritable_checkpoint_folder_is_an_oserror_not_a_torch_traceback(read_only_folder):
    with pytest.raises(OSError):
        save_checkpoint(read_only_folder / "m.pt", nn.Linear(2, 2), arch="x")


def test_a_pool_worker_can_still_compile_kernels():
    """A pool worker imports Numba before its set-up runs: setting NUMBA_NUM_THREADS then made
    every later compilation fail (a first run with ``--workers 2`` and no kernel cache). Its
    torch computes on one thread (Numba's pool, started later, used to reset that to all)."""
    code = (
        "import os, sys\n"
        "os.environ.pop('NUMBA_NUM_THREADS', None)\n"
        "from memsim.experiment import executor\n"
        "assert 'numba' in sys.modules\n"
        "executor._init_worker(None)\n"
        "import numba, torch\n"
        "assert numba.get_num_threads() == 1\n"
        "assert torch.get_num_threads() == 1, torch.get_num_threads()\n"
        "assert numba.njit(lambda x: x + 1)(1) == 2\n"  # a compilation after the pool started
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_torch_thread_count_survives_importing_the_kernels():
    """Numba's OpenMP pool shares torch's OpenMP runtime; starting it (on importing memsim's
    kernels) set torch's thread count to NUMBA_NUM_THREADS, undoing the user's."""
    code = (
        "import numba, torch\n"
        "assert numba.config.NUMBA_NUM_THREADS >= 2, 'needs two cores'\n"
        "torch.set_num_threads(1)\n"
        "import memsim.jit\n"
        "assert torch.get_num_threads() == 1, torch.get_num_threads()\n"
        "from memsim.experiment.executor import set_threads\n"
        "set_threads(2)\n"
        "assert (torch.get_num_threads(), numba.get_num_threads()) == (2, 2)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs two cores")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------ options that do nothing in the mode chosen


def test_python_api_refuses_compute_dtype_of_an_integer_experiment(tmp_path):
    """A config built in Python skips the loader; run_experiment refuses the same way."""
    config, _ = load_experiment(overrides=['formats=["int8"]', 'policies=["baseline"]'])
    sweep = dataclasses.replace(config.sweep, compute_dtype="float32")
    bad = dataclasses.replace(config, sweep=sweep)
    assert bad.digest() != config.digest()  # what the refusal keeps from being recorded
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"^'sweep\.compute_dtype': compute_dtype = 'float32'"):
        run_experiment(bad, RunOptions(out=out, progress=False))
    assert not out.exists()


def test_sigma_sa_ln_with_a_1t1r_cell_is_refused():
    """Only a 2T2R pair is read by a sense amplifier: the offset changed only the hash."""
    from memsim.device import load_device
    from memsim.inference.faults import cell_rates
    from memsim.studies.bnn import parse_study_config

    condition = load_device("default").condition
    with pytest.raises(ValueError, match=r"'sigma_sa_ln' parameter \(0\.1\) has no effect") as info:
        cell_rates(condition, "1t1r", 0.1)
    assert '"1t1r"' in str(info.value)
    assert cell_rates(condition, "1t1r", 0.0) == (condition.p01, condition.p10)
    assert cell_rates(condition, "2t2r", 0.1)[0] > cell_rates(condition, "2t2r", 0.0)[0]
    with pytest.raises(ConfigError, match=r"sigma_sa_ln.*has no effect with cell = \"1t1r\""):
        parse_study_config({"cell": "1t1r", "sigma_sa_ln": 0.1}, source="x.toml")
    assert parse_study_config({"cell": "2t2r", "sigma_sa_ln": 0.1}, source="x.toml").sigma_sa_ln
    assert parse_study_config({"cell": "1t1r", "sigma_sa_ln": 0.0}, source="x.toml").cell == "1t1r"


def test_bnn_cli_refuses_sigma_sa_ln_with_a_1t1r_cell_before_writing(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["bnn", "digits", "--out", str(out), "--no-progress", "--set", "sigma_sa_ln=0.2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("memsim bnn: error: ") and "sigma_sa_ln" in last and "1t1r" in last
    assert "epoch 1/" not in err and not out.exists()


@pytest.mark.parametrize("verb", ["eval", "trace"])
def test_calibration_method_with_a_float_format_is_refused_before_anything_is_written(
    verb, tmp_path, capsys
):
    """--calibration-method was read only by int8/int4; a float run ignored it."""
    out = tmp_path / "trace.json"
    extra = ["--out", str(out)] if verb == "trace" else ["--limit", "8"]
    argv = [verb, "digits", "--format", "float16", "--calibration-method", "percentile", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"memsim {verb}: error: --calibration-method ")
    assert "percentile" in err[0] and "--format float16" in err[0]
    assert not out.exists()


def test_calibration_method_default_is_minmax_for_an_integer_format(capsys):
    """Not given, an int format still calibrates with minmax (the default is unchanged)."""
    base = ["eval", "digits", "--format", "int8", "--limit", "32", "--p", "0.02", "--json"]
    results = []
    for extra in ([], ["--calibration-method", "minmax"], ["--calibration-method", "percentile"]):
        assert main([*base, *extra]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0] == results[1]
    assert results[2]["format"] == "int8"  # given explicitly for an int format: accepted
    assert main(["eval", "digits", "--limit", "8", "--p", "0"]) == 0  # a float run, no flag
    capsys.readouterr()
