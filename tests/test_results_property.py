"""Property: damaged results folders never give a silently different result or a traceback.

A finished folder's store (``points.jsonl``) or table (``points.csv``) is truncated, has lines
deleted or duplicated, or gets rows of another experiment; reading the folder then either
gives exactly the original points or raises :class:`ResultsError` (one line naming the file).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
from helpers import sweep_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.experiment.store import (
    POINTS_CSV,
    POINTS_LOG,
    ResultsError,
    ResultsStore,
    load_points,
    points_frame,
    read_experiment,
    write_csv_atomic,
)

CONFIG = {
    "workloads": [{"name": "w", "label": "w"}],
    "formats": ["float32"],
    "policies": [{"label": "baseline", "spec": "baseline"}],
    "masks": ["all"],
}
DIGEST = "0123456789abcdef"
OTHER_DIGEST = "fedcba9876543210"


def make_row(p: float, repeat: int, accuracy: float, *, workload: str = "w") -> dict:
    return sweep_row(p, repeat, accuracy, workload=workload, n_images=100)


ROWS = [make_row(p, r, 0.9 - 0.1 * i) for i, p in enumerate((1e-4, 1e-3, 1e-2)) for r in range(3)]


def build(folder) -> pd.DataFrame:
    with ResultsStore.open(folder, config=CONFIG, digest=DIGEST) as store:
        for row in ROWS:
            store.append(row)
        frame = store.points_frame()
    write_csv_atomic(folder / POINTS_CSV, frame)
    return frame


def foreign_line(kind: str, p: float) -> str:
    """A row from elsewhere: another experiment's (tagged), or an untagged or relabelled one."""
    row = make_row(p, 7, 0.5, workload="w" if kind != "label" else "other")
    if kind == "tagged":
        row["config_hash"] = OTHER_DIGEST
    elif kind == "label":
        row["config_hash"] = DIGEST
    return json.dumps(row)


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("duplicate"), st.integers(0, 20)),
    st.tuples(
        st.just("foreign"),
        st.tuples(st.sampled_from(["tagged", "untagged", "label"]), st.sampled_from([1e-4, 0.5])),
    ),
)


def mutate_log(text: str, op: str, arg) -> str:
    lines = text.splitlines(keepends=True)
    if op == "truncate":
        return text[: int(arg * len(text))]
    if op == "delete" and lines:
        del lines[arg % len(lines)]
    elif op == "duplicate" and lines:
        i = arg % len(lines)
        lines.insert(i, lines[i] if lines[i].endswith("\n") else lines[i] + "\n")
    elif op == "foreign":
        lines.append(foreign_line(*arg) + "\n")
    return "".join(lines)


def mutate_csv(text: str, op: str, arg, header: list[str]) -> str:
    if op != "foreign":
        head, _, body = text.partition("\n")
        return head + "\n" + mutate_log(body, op, arg)  # the header stays: rows are mutated
    row = json.loads(foreign_line(*arg))
    extra = pd.DataFrame([row]).reindex(columns=header)
    return text + extra.to_csv(index=False, header=False)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    target=st.sampled_from([POINTS_LOG, POINTS_CSV]), ops=st.lists(mutation, min_size=1, max_size=3)
)
def test_damaged_folder_reads_as_the_original_or_is_refused(tmp_path_factory, target, ops):
    folder = tmp_path_factory.mktemp("folder")
    original = build(folder)
    path = folder / target
    text = path.read_text()
    header = list(original.columns)
    for op, arg in ops:
        text = (
            mutate_log(text, op, arg) if target == POINTS_LOG else mutate_csv(text, op, arg, header)
        )
    path.write_text(text)
    try:
        got = load_points(folder, read_experiment(folder))
    except ResultsError as exc:
        message = str(exc)
        assert "\n" not in message and (str(folder) in message)
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), points_frame(original.to_dict("records")), check_dtype=False
    )
