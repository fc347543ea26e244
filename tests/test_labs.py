"""The course labs: handouts, questions and key stay in step, and every lab runs.

Each lab is run in a shortened (smoke) mode; every file its handout tells students to open
must exist in the lab's output, and every numeric question of the key must be answerable
from those files.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

LABS_DIR = Path(__file__).resolve().parents[1] / "docs" / "labs"


def _make_key():
    spec = importlib.util.spec_from_file_location("make_key", LABS_DIR / "make_key.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_key"] = module
    spec.loader.exec_module(module)
    return module


make_key = _make_key()
LABS, QUESTIONS = make_key.load_questions()


def test_every_lab_has_numeric_and_explanation_questions():
    for lab in LABS:
        qs = [q for q in QUESTIONS if q.lab == lab.number]
        assert any(q.numeric for q in qs), lab.number
        assert any(not q.numeric and q.answer for q in qs), lab.number


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: f"lab{lab.number}")
def test_handout_asks_exactly_the_key_questions(lab):
    asked = make_key.handout_question_ids(lab)
    declared = [q.id for q in QUESTIONS if q.lab == lab.number]
    assert asked == declared


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: f"lab{lab.number}")
def test_handout_has_every_section(lab):
    text = lab.handout_path().read_text()
    for section in (
        "## Learning goals",
        "## Background",
        "## Commands",
        "## What to open",
        "## Questions",
        "## Extension",
    ):
        assert section in text, f"{lab.handout}: missing {section}"


def test_committed_key_matches_the_questions():
    key = (LABS_DIR / "key.md").read_text()
    for q in QUESTIONS:
        assert f"**Q{q.id}**" in key, f"key.md has no answer to Q{q.id}: regenerate it"


REPO = LABS_DIR.parent.parent
#: Labs that run an experiment (a sweep with fits), not a study or a search.
SWEEP_LABS = [
    lab
    for lab in LABS
    if lab.config is not None
    and lab.verb == "run"
    and "study" not in tomllib.loads((REPO / lab.config).read_text())
]


@pytest.mark.parametrize("lab", SWEEP_LABS, ids=lambda lab: f"lab{lab.number}")
def test_lab_configs_repeat_enough_for_the_reports_bootstrap(lab):
    """The report warns about bootstrap intervals over fewer repeats (too few distinct
    resamples); a lab whose key grades against those intervals must not get that warning."""
    from memsim.experiment.load import load_experiment
    from memsim.report.markdown import MIN_BOOTSTRAP_REPEATS

    config, _ = load_experiment(REPO / lab.config)
    assert config.sweep.repeats >= MIN_BOOTSTRAP_REPEATS
    if config.adaptive.enabled:
        assert config.adaptive.min_repeats >= MIN_BOOTSTRAP_REPEATS
    else:
        # Grid labs: 5 points per decade put at least 3 points (the fit's minimum) inside
        # the narrowest drop the labs grade (int8, about one decade between 10 % and 90 %).
        assert config.grid.points_per_decade >= 5


def test_lab1_extension_runs_the_same_curve_as_lab1():
    from memsim.experiment.load import load_experiment

    grid, _ = load_experiment(REPO / "configs/labs/lab1_noise_curve.toml")
    adaptive, _ = load_experiment(REPO / "configs/labs/lab1_adaptive.toml")
    assert adaptive.adaptive.enabled and not grid.adaptive.enabled
    for attr in ("seed", "workloads", "formats", "policies"):
        assert getattr(adaptive, attr) == getattr(grid, attr), attr
    assert (adaptive.grid.p_min, adaptive.grid.p_max) == (grid.grid.p_min, grid.grid.p_max)
    assert adaptive.sweep.repeats == grid.sweep.repeats


def test_tolerance_names_the_reports_interval_and_flags_unresolved_fits():
    q = make_key.Question(
        id="9.1",
        lab=1,
        text="",
        file="summary.csv",
        column="mu",
        tolerance={"ci": ["mu_ci_low", "mu_ci_high"]},
    )
    rows = pd.DataFrame(
        {"mu": [2e-4], "mu_ci_low": [1.9e-4], "mu_ci_high": [2.1e-4], "fit_status": ["ok"]}
    )
    text = make_key._tolerance(q, rows, 2e-4)
    assert "[0.00019, 0.00021]" in text and "bootstrap interval over repeats" in text
    assert "seeds differ" not in text and "not reliable" not in text
    text = make_key._tolerance(q, rows.assign(fit_status="unresolved_drop"), 2e-4)
    assert "unresolved_drop" in text and "not reliable" in text


def test_operating_point_answers_use_the_reports_wilson_interval():
    for q in QUESTIONS:
        if q.column == "accuracy_at_operating_point":
            assert q.tolerance["ci"] == [
                "accuracy_at_operating_point_ci_low",
                "accuracy_at_operating_point_ci_high",
            ], q.id


@pytest.mark.integration
@pytest.mark.parametrize("lab", LABS, ids=lambda lab: f"lab{lab.number}")
def test_lab_runs_and_writes_what_its_handout_names(lab, tmp_path):
    text, times = make_key.make_key(LABS, QUESTIONS, tmp_path, smoke=True, only={lab.number})
    out = tmp_path / f"lab{lab.number}"
    missing = [f for f in make_key.handout_files(lab) if not (out / f).exists()]
    assert not missing, f"lab {lab.number} did not write {missing}"
    for q in (q for q in QUESTIONS if q.lab == lab.number and q.numeric):
        assert f"**Q{q.id}**" in text
    assert times[lab.number] > 0


def test_lab6_trains_the_same_network_on_every_run():
    """Lab 6 seeded its training after building the network, whose initialisation came from
    torch's randomly seeded default generator: every run (and the key) got other answers."""
    import torch

    spec = importlib.util.spec_from_file_location("lab6", LABS_DIR / "lab6_own_network.py")
    assert spec is not None and spec.loader is not None
    lab6 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab6)
    splits = lab6.digits_splits()
    weights = []
    for stir in (1, 2):
        torch.manual_seed(stir)  # as another process would find the default generator
        torch.rand(stir)
        net = lab6.trained_network(splits, epochs=1)
        weights.append([v.clone() for v in net.state_dict().values()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    # and the seed matters: another seed is another network
    other = lab6.trained_network(splits, epochs=1, seed=1).state_dict().values()
    assert not all(torch.equal(a, b) for a, b in zip(weights[0], other))


def test_make_key_clears_only_the_folders_it_made(tmp_path, monkeypatch):
    """make_key cleared <--work>/labN before each run: with --work runs it deleted the
    students' runs/lab1 ... runs/lab7. It now clears only folders carrying its marker."""
    import subprocess

    def fake_run(cmd, **kwargs):  # the lab's command makes its --out folder; nothing else
        Path(cmd[cmd.index("--out") + 1]).mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(subprocess, "run", fake_run)
    lab = LABS[0]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "points.csv").write_text("a student's results\n")
    with pytest.raises(SystemExit, match="did not make"):
        make_key.run_lab(lab, theirs, smoke=True)
    assert (theirs / "points.csv").read_text() == "a student's results\n"
    ours = tmp_path / "ours"
    make_key.run_lab(lab, ours, smoke=True)  # a new folder: run, then marked
    assert (ours / make_key.MARKER).is_file()
    (ours / "points.csv").write_text("old run\n")
    make_key.run_lab(lab, ours, smoke=True)  # marked: cleared for a fresh run
    assert not (ours / "points.csv").exists() and (ours / make_key.MARKER).is_file()
