"""Generate the instructor key of the memsim course labs from real runs.

Every numeric question of the labs is declared in ``docs/labs/questions.toml``: the lab it
belongs to, the file of the lab's results folder the answer is read from, the row (a filter on
columns) and the column, and how far a student's answer may be from the key's (the tolerance:
the interval the run's report gives for the estimate, a binomial band, or a relative band for
deterministic quantities). This script runs every lab's config, reads each answer from the files the lab
wrote, times each run, and writes ``docs/labs/key.md``. Re-run it after any change to memsim
and every expected answer follows.

Usage::

    python docs/labs/make_key.py                 # run every lab, write docs/labs/key.md
    python docs/labs/make_key.py --labs 1 3      # only these labs, key printed
    python docs/labs/make_key.py --smoke         # tiny runs (a test uses this), key to stdout
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
QUESTIONS = HERE / "questions.toml"
KEY = HERE / "key.md"
#: File a lab's work folder gets once this script has run it: only such folders are cleared.
MARKER = ".make_key"

#: Overrides for a smoke run: every lab in seconds, same files written.
SMOKE = (
    "grid.points_per_decade=1",
    "sweep.repeats=2",
    "sweep.images=64",
    "fit.bootstrap=20",
    "memory.trace_images=2",
)


@dataclass(frozen=True)
class Lab:
    number: int
    title: str
    handout: str
    config: str | None = None
    script: str | None = None
    verb: str = "run"
    smoke: tuple[str, ...] = SMOKE

    def handout_path(self) -> Path:
        return HERE / self.handout


@dataclass(frozen=True)
class Question:
    id: str
    lab: int
    text: str
    file: str = ""
    where: Mapping[str, Any] | None = None
    column: str = ""
    reduce: str = "single"
    tolerance: Mapping[str, Any] | None = None
    answer: str = ""  # for explanation questions: what a good answer contains

    @property
    def numeric(self) -> bool:
        return bool(self.column)


def load_questions(path: Path = QUESTIONS) -> tuple[list[Lab], list[Question]]:
    data = tomllib.loads(path.read_text())
    labs = sorted(
        (Lab(**{**lab, "smoke": tuple(lab.get("smoke", SMOKE))}) for lab in data["lab"]),
        key=lambda lab: lab.number,
    )
    questions = [Question(**q) for q in data["question"]]
    known = {lab.number for lab in labs}
    for q in questions:
        if q.lab not in known:
            raise ValueError(f"{path}: question {q.id} names lab {q.lab}, which is not declared")
    return labs, questions


def handout_question_ids(lab: Lab) -> list[str]:
    """The question ids a handout asks, in order: lines that start with ``**Qn.m**``."""
    return re.findall(r"^\*\*Q(\d+\.\d+)\*\*", lab.handout_path().read_text(), re.MULTILINE)


def handout_files(lab: Lab) -> list[str]:
    """The result files a handout tells students to open: backticked paths in its
    "What to open" section (relative to the lab's output folder)."""
    text = lab.handout_path().read_text()
    match = re.search(r"^## What to open\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise ValueError(f"{lab.handout}: no '## What to open' section")
    return sorted(set(re.findall(r"`([\w./-]+\.(?:csv|md|png|svg|json|toml))`", match.group(1))))


def run_lab(lab: Lab, out: Path, *, smoke: bool) -> float:
    """Run one lab into a fresh ``out``; return the wall time in seconds."""
    import shutil
    import subprocess

    marker = out / MARKER
    if out.exists():
        # A results folder resumes its finished points: the run would be neither timed nor
        # re-run, so it is cleared; but only a folder this script made (a student's or an
        # instructor's runs/labN under another --work is never deleted).
        if any(out.iterdir()) and not marker.is_file():
            raise SystemExit(
                f"make_key: {out} holds results this script did not make; choose another "
                "--work (default runs/labs) or remove it yourself."
            )
        print(f"make_key: clearing {out} for a fresh run", file=sys.stderr)
        shutil.rmtree(out)
    start = time.perf_counter()
    if lab.config is not None:
        cmd = [
            sys.executable,
            "-m",
            "memsim",
            lab.verb,
            lab.config,
            "--out",
            str(out),
            "--no-progress",
        ]
        for item in lab.smoke if smoke else ():
            cmd += ["--set", item]
    elif lab.script is not None:
        cmd = [sys.executable, str(REPO / lab.script), "--out", str(out)]
        if smoke:
            cmd.append("--smoke")
    else:
        raise ValueError(f"lab {lab.number} has neither a config nor a script")
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    marker.write_text("made by docs/labs/make_key.py: cleared and re-run on its next run\n")
    return elapsed


def _rows(frame: pd.DataFrame, where: Mapping[str, Any] | None) -> pd.DataFrame:
    rows = frame
    for key, value in (where or {}).items():
        if key not in rows.columns:
            raise KeyError(f"no column {key!r}")
        rows = rows[rows[key].astype(str) == str(value)]
    return rows


_REDUCERS: dict[str, Callable[[pd.Series], float]] = {
    "single": lambda s: float(s.iloc[0]) if len(s) == 1 else math.nan,
    "count": lambda s: float(len(s)),
    "max": lambda s: float(s.max()),
    "min": lambda s: float(s.min()),
    "mean": lambda s: float(s.mean()),
}


def answer(q: Question, out: Path) -> tuple[float, str]:
    """The key's answer to ``q`` from the lab's folder, with its tolerance as text."""
    frame = pd.read_csv(out / q.file)
    rows = _rows(frame, q.where)
    if q.reduce == "single" and len(rows) != 1:
        raise ValueError(
            f"question {q.id}: {len(rows)} rows of {q.file} match {dict(q.where or {})}"
        )
    value = _REDUCERS[q.reduce](rows[q.column])
    return value, _tolerance(q, rows, value)


def _tolerance(q: Question, rows: pd.DataFrame, value: float) -> str:
    tol = dict(q.tolerance or {})
    if not math.isfinite(value):
        return "no value: the run could not measure it (see the report's notes)"
    if "ci" in tol:
        lo, hi = (float(rows[c].iloc[0]) for c in tol["ci"])
        note = tol.get("note", "the run's 95 % bootstrap interval over repeats")
        if math.isfinite(lo) and math.isfinite(hi):
            return f"within [{lo:.3g}, {hi:.3g}] ({note})" + _fit_flag(q, rows)
        return "interval not resolved by this run: accept the same order of magnitude"
    if "std_column" in tol:
        std = float(rows[tol["std_column"]].iloc[0])
        k = float(tol.get("k", 2))
        what = tol.get("note", "standard deviations over repeats")
        return f"± {k * std:.3g} ({k:g} {what})"
    if "binomial_images" in tol:
        n = float(rows[tol["binomial_images"]].iloc[0])
        half = 2 * math.sqrt(max(value * (1 - value), 1e-12) / max(n, 1))
        return f"± {half:.3g} (two binomial standard errors over {int(n)} images)"
    if "relative" in tol:
        note = tol.get("note", "a deterministic cost model: it differs only if the config does")
        return f"± {100 * float(tol['relative']):g} % ({note})"
    if "absolute" in tol:
        return f"± {float(tol['absolute']):g}"
    return "exact (a count fixed by the config)"


def _fit_flag(q: Question, rows: pd.DataFrame) -> str:
    """A warning when the answer is a midpoint the run's own fit does not call resolved."""
    if q.column != "mu" or "fit_status" not in rows.columns:
        return ""
    status = str(rows["fit_status"].iloc[0])
    if status == "ok":
        return ""
    print(
        f"make_key: Q{q.id}: fit_status {status}; the lab config does not resolve it",
        file=sys.stderr,
    )
    return f"; the run calls this fit {status}, so the interval is not reliable"


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.3g}"
    return f"{value:.4g}"


def make_key(
    labs: list[Lab], questions: list[Question], work: Path, *, smoke: bool, only: set[int] | None
) -> tuple[str, dict[int, float]]:
    times: dict[int, float] = {}
    lines = [
        "# Instructor key for the memsim labs",
        "",
        "Generated by `python docs/labs/make_key.py` from real runs of each lab's config on this",
        "version of memsim; do not edit by hand. A student's numeric answer is right when it lies",
        "within the stated tolerance. Students run the same config with the same seed, so they",
        "draw the same bit flips and the same repeats as this key; their numbers differ only",
        "through floating-point differences between machines (CPU, math libraries, library",
        "versions; the digits network and lab 5's binarized networks ship with memsim, lab 6's",
        "own network is trained on each machine from a fixed seed), which can tip a borderline",
        "image to another class. The tolerance is the uncertainty the run's",
        "report gives for each estimate (its interval over repeats, or the binomial error over",
        "the test images): an answer inside it agrees with the key as far as the run can tell.",
        "Deterministic cost figures match to rounding.",
        "",
    ]
    for lab in labs:
        if only and lab.number not in only:
            continue
        out = work / f"lab{lab.number}"
        times[lab.number] = run_lab(lab, out, smoke=smoke)
        lines += [f"## Lab {lab.number}: {lab.title}", ""]
        lines += [f"Run time on the machine that made this key: {times[lab.number]:.0f} s.", ""]
        for q in (q for q in questions if q.lab == lab.number):
            if q.numeric:
                value, tol = answer(q, out)
                lines.append(f"- **Q{q.id}** {q.text} **{_fmt(value)}** — tolerance: {tol}.")
            else:
                lines.append(f"- **Q{q.id}** {q.text} {q.answer}")
        lines.append("")
    return "\n".join(lines), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", type=int, nargs="*", help="lab numbers to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny runs; print the key")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "labs", help="output folders")
    args = parser.parse_args(argv)
    labs, questions = load_questions()
    text, times = make_key(
        labs, questions, args.work, smoke=args.smoke, only=set(args.labs or ()) or None
    )
    for number, seconds in times.items():
        print(f"lab {number}: {seconds:.0f} s", file=sys.stderr)
    if args.smoke or args.labs:
        print(text)
    else:
        KEY.write_text(text + "\n")
        print(f"wrote {KEY}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
