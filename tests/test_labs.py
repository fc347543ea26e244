"""The course labs: handouts, questions and key stay in step, and every lab runs.

Each lab is run in a shortened (smoke) mode; every file its handout tells students to open
must exist in the lab's output, and every numeric question of the key must be answerable
from those files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
