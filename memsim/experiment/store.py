"""The results store: one output folder per experiment, appended to point by point.

Sits after the sweep workers and before the report. Every finished point is appended at once
to ``points.jsonl`` as one line, written with a single ``write`` on an ``O_APPEND`` descriptor
and ``fsync``-ed, so an interruption (Ctrl-C, ``kill -9``, power loss) loses at most the point
being written. A torn last line is cut off when the store is opened again; points are keyed by a
stable ``point_id`` so a resumed sweep skips what is done and never duplicates it.

The folder is tied to one experiment by ``experiment.json`` (the config hash); opening it for a
different experiment is refused. Tables a person opens (``points.csv``, ``summary.csv``, ...) are
written whole, through a temporary file and a rename, so they are never half-written.
See ``docs/results.md`` for the files and columns (a public contract).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The store's errors and file helpers, imported from here by its callers too.
from memsim.errors import ResultsError
from memsim.fit import wilson_interval
from memsim.paths import check_writable, write_text_atomic
from memsim.rng import NOISE_DRAWS

#: Version of the folder layout and column names below; bump on incompatible changes.
SCHEMA_VERSION = 1
SCHEMA = "memsim.results"

EXPERIMENT_FILE = "experiment.json"
POINTS_LOG = "points.jsonl"
POINTS_CSV = "points.csv"
SUMMARY_CSV = "summary.csv"
MEMORY_CSV = "memory.csv"
WRITES_CSV = "writes.csv"
METADATA_FILE = "metadata.json"
LOCK_FILE = ".lock"

#: Columns of ``points.csv`` in order (the contract; docs/results.md explains each).
POINT_COLUMNS = (
    "workload",
    "format",
    "policy",
    "mask",
    "kind",
    "p",
    "p10",
    "repeat",
    "seed",
    "coupled",
    "accuracy",
    "nonfinite_fraction",
    "n_images",
    "num_classes",
    "point_id",
)
#: Computed columns of ``points.csv`` after :data:`POINT_COLUMNS`: each point's 95 % Wilson
#: interval of its accuracy over its ``n_images`` images.
POINT_INTERVAL_COLUMNS = ("accuracy_ci_low", "accuracy_ci_high")
#: Columns that identify a point; ``point_id`` is a hash of them.
KEY_COLUMNS = ("workload", "format", "policy", "mask", "kind", "p", "p10", "repeat")
#: Float columns that may hold NaN/inf (stored as strings in JSON).
FLOAT_COLUMNS = ("p", "p10", "accuracy", "nonfinite_fraction")


@dataclass(frozen=True)
class RowSchema:
    """The columns of one kind of point: their order, the key a ``point_id`` hashes, the floats.

    The accuracy sweep's points use :data:`SWEEP_ROWS`; a study built on the same store
    (:mod:`memsim.studies`) declares its own.
    """

    columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    float_columns: tuple[str, ...]

    def __post_init__(self) -> None:
        missing = [c for c in (*self.key_columns, "point_id") if c not in self.columns]
        if missing:
            raise ValueError(f"RowSchema key columns {missing} are not among its columns.")


SWEEP_ROWS = RowSchema(POINT_COLUMNS, KEY_COLUMNS, FLOAT_COLUMNS)


def point_id(key: Mapping[str, Any], schema: RowSchema = SWEEP_ROWS) -> str:
    """A stable id for a point from its key columns (floats hashed exactly, via ``float.hex``)."""
    parts = {}
    for name in schema.key_columns:
        value = key[name]
        parts[name] = float(value).hex() if isinstance(value, float) else value
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(config: Mapping[str, Any]) -> str:
    """The identity of an experiment: a hash of its modelled config as canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_csv_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write a table as CSV atomically (floats as shortest round-trip text, no index)."""
    return write_text_atomic(path, frame.to_csv(index=False))


class ResultsStore:
    """Append-only store of finished points in one experiment's output folder.

    Call order: :meth:`open` (checks the folder and its experiment identity, takes a lock),
    :meth:`finished` to see what is done, :meth:`append` per new point, :meth:`close`.
    Use as a context manager to release the lock.
    """

    def __init__(
        self,
        folder: Path,
        fd: int,
        lock_fd: int,
        rows: dict[str, dict],
        schema: RowSchema = SWEEP_ROWS,
        digest: str | None = None,
    ) -> None:
        self.folder = folder
        self.schema = schema
        self.digest = digest
        self._fd = fd
        self._lock_fd = lock_fd
        self._rows = rows

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike,
        *,
        config: Mapping[str, Any],
        digest: str,
        schema: RowSchema = SWEEP_ROWS,
    ) -> ResultsStore:
        """Open (or create) ``folder`` for the experiment with hash ``digest``.

        ``schema`` names the points' columns (default: the accuracy sweep's).

        Raises
        ------
        ResultsError
            The folder holds another experiment's results, is not writable, or is in use by
            another running sweep.
        """
        folder = Path(folder)
        check_writable(folder)
        claim_folder(folder, config=config, digest=digest)
        lock_fd = os.open(folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise ResultsError(
                f"Output folder {folder} is in use by another running sweep."
            ) from None
        log = folder / POINTS_LOG
        _repair_torn_tail(log)
        rows = {row["point_id"]: row for row in read_log(log, schema, config=config, digest=digest)}
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return cls(folder, fd, lock_fd, rows, schema, digest)

    def finished(self) -> dict[str, dict]:
        """Finished points by ``point_id`` (a copy)."""
        return dict(self._rows)

    def __contains__(self, pid: str) -> bool:
        return pid in self._rows

    def append(self, row: Mapping[str, Any]) -> None:
        """Persist one finished point now (one line, one write, fsync); duplicates are ignored."""
        pid = row["point_id"]
        if pid in self._rows:
            return
        if self.digest is not None:  # ties the row to its experiment (foreign rows are refused)
            row = {**row, "config_hash": self.digest}
        line = json.dumps(_jsonable(row), sort_keys=True) + "\n"
        data = line.encode()
        # One write on an O_APPEND descriptor: the line lands whole or (if killed) torn at the
        # end, where the next open cuts it off.
        written = os.write(self._fd, data)
        if written != len(data):
            raise ResultsError(f"Short write to {self.folder / POINTS_LOG}; the disk may be full.")
        os.fsync(self._fd)
        self._rows[pid] = dict(row)

    def points_frame(self) -> pd.DataFrame:
        """All finished points as a tidy frame in a canonical order (independent of finish order)."""
        return points_frame(self._rows.values(), self.schema)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def claim_folder(folder: Path, *, config: Mapping[str, Any], digest: str) -> None:
    """Tie ``folder`` to an experiment, or refuse when it belongs to another one."""
    marker = folder / EXPERIMENT_FILE
    if marker.exists():
        found = read_json(marker)
        if found.get("config_hash") != digest:
            raise ResultsError(
                f"Output folder {folder} holds results of a different experiment "
                f"(config hash {found.get('config_hash')}, this config {digest}). "
                "Refusing to mix them: choose another folder with --out."
            )
        drawn = found.get("noise_draws", 1)  # folders from before the key: the first draws
        if drawn != NOISE_DRAWS:
            raise ResultsError(
                f"Output folder {folder} holds results made with noise draws {drawn}; this "
                f"memsim makes noise draws {NOISE_DRAWS} from the same seeds, so resuming would "
                "mix two samplers. Finish the run with the memsim that started it, or choose "
                "another folder with --out."
            )
        return
    others = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    if others:
        raise ResultsError(
            f"Output folder {folder} is not empty and is not a memsim results folder "
            f"(found {', '.join(sorted(others)[:3])}). Choose an empty or new folder with --out."
        )
    payload = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "config_hash": digest,
        "noise_draws": NOISE_DRAWS,
        "config": config,
    }
    write_text_atomic(marker, json.dumps(_jsonable(payload), indent=1, sort_keys=True))


def read_experiment(folder: str | os.PathLike) -> dict:
    """The ``experiment.json`` of a results folder (schema-checked)."""
    marker = Path(folder) / EXPERIMENT_FILE
    if not marker.is_file():
        raise ResultsError(
            f"{folder} is not a memsim results folder ({EXPERIMENT_FILE} is missing)."
        )
    payload = read_json(marker)
    if payload.get("schema") != SCHEMA or payload.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{marker} has schema {payload.get('schema')!r} version {payload.get('version')!r}; "
            f"this memsim reads {SCHEMA!r} version {SCHEMA_VERSION}."
        )
    if not isinstance(payload.get("config_hash"), str) or not isinstance(
        payload.get("config"), dict
    ):
        raise ResultsError(f"{marker} lacks its 'config_hash' or 'config'; it is corrupt.")
    return payload


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; anything else is a :class:`ResultsError` naming the file."""
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is not UTF-8 text; it is corrupt.") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{path} line {exc.lineno} is not valid JSON ({exc.msg}); it is corrupt."
        ) from None
    if not isinstance(payload, dict):
        raise ResultsError(f"{path} does not hold a JSON object; it is corrupt.")
    return payload


def read_log(
    path: str | os.PathLike,
    schema: RowSchema = SWEEP_ROWS,
    *,
    config: Mapping[str, Any] | None = None,
    digest: str | None = None,
) -> list[dict]:
    """Rows of a ``points.jsonl`` file, each checked (:func:`check_row`), once per ``point_id``.

    A torn last line (an interrupted write) is skipped; a bad line elsewhere, a row of another
    experiment, or a point repeated with different values is a :class:`ResultsError` naming
    the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is not UTF-8 text; it is corrupt.") from None
    rows: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    numbered: list[tuple[int, dict]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # torn tail: the write in progress when killed
                continue
            raise ResultsError(f"{path} line {number} is corrupt: {line[:80]!r}") from None
        where = f"{path} line {number}"
        if isinstance(row, dict):
            row = _from_json(row, schema.float_columns)
        row = check_row(row, where, config, digest, schema)
        _add_unique(rows, first_line, row, number, where)
        numbered.append((number, row))
    _check_tagged(numbered, path)
    return list(rows.values())


def _check_tagged(rows: list[tuple[int, dict]], path: Path) -> None:
    """Rows written by this store carry the folder's config hash; an untagged one among tagged
    rows was put there by something else (older folders, with no tags at all, are accepted)."""
    tagged = [number for number, row in rows if row.get("config_hash") is not None]
    untagged = [number for number, row in rows if row.get("config_hash") is None]
    if tagged and untagged:
        raise ResultsError(
            f"{path} line {untagged[0]} lacks the 'config_hash' every other row carries; "
            "it was not written by this experiment."
        )


def _add_unique(rows: dict, first_line: dict, row: dict, number: int, where: str) -> None:
    pid = row["point_id"]
    if pid not in rows:
        rows[pid] = row
        first_line[pid] = number
    elif not _same_row(rows[pid], row):
        raise ResultsError(
            f"{where} repeats point {pid} of line {first_line[pid]} with different values."
        )


def _same_row(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = (set(a) | set(b)) - {"config_hash"}
    return all(_same_value(a.get(k), b.get(k)) for k in keys)


def _same_value(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def _labels(config: Mapping[str, Any]) -> dict[str, set]:
    """The labels a row of this experiment may carry, per key column (only those the config lists)."""
    out: dict[str, set] = {}
    if isinstance(config.get("workloads"), list):
        out["workload"] = {
            w.get("label") or w.get("name") if isinstance(w, Mapping) else w
            for w in config["workloads"]
        }
    if isinstance(config.get("policies"), list):
        out["policy"] = {
            p.get("label") if isinstance(p, Mapping) else p for p in config["policies"]
        }
    for column, key in (("format", "formats"), ("mask", "masks")):
        if isinstance(config.get(key), list):
            out[column] = set(config[key])
    return out


#: Kinds of points (``memsim.experiment.points.KINDS``).
POINT_KINDS = ("clean", "sweep", "operating")


def check_row(
    row: Any,
    where: str,
    config: Mapping[str, Any] | None = None,
    digest: str | None = None,
    schema: RowSchema = SWEEP_ROWS,
    verify_id: bool = True,
) -> dict:
    """Check one stored point against the store's schema and the folder's experiment.

    For every schema: the key columns must be present, ``point_id`` must be their hash and a
    ``config_hash`` (when present) the folder's. For the accuracy sweep's rows
    (:data:`SWEEP_ROWS`) also: the key columns well typed, the accuracy a fraction (or NaN) and
    the labels those the experiment lists. Returns the row; raises :class:`ResultsError` naming
    ``where``.
    """
    if not isinstance(row, dict):
        raise ResultsError(f"{where} is not a point (a JSON object). Got {str(row)[:60]!r}.")
    required = (*schema.key_columns, "point_id", *(("accuracy",) if schema == SWEEP_ROWS else ()))
    missing = [c for c in required if c not in row]
    if missing:
        raise ResultsError(f"{where} lacks column(s) {', '.join(missing)}.")
    if not isinstance(row["point_id"], str):
        raise ResultsError(f"{where}: 'point_id' must be a string. Got {row['point_id']!r}.")
    if schema == SWEEP_ROWS:
        _check_sweep_row(row, where)
    if verify_id and row["point_id"] != point_id(row, schema):
        raise ResultsError(
            f"{where}: 'point_id' {row['point_id']!r} does not match the row's key columns "
            "(the row was edited or is corrupt)."
        )
    found = row.get("config_hash")
    if digest is not None and found is not None and found != digest:
        raise ResultsError(
            f"{where} is a point of another experiment (config hash {found}, this folder's "
            f"{digest}); it was copied in from elsewhere."
        )
    if schema == SWEEP_ROWS:
        for column, allowed in _labels(config or {}).items():
            if row[column] not in allowed:
                raise ResultsError(
                    f"{where}: {column} {row[column]!r} is not one of this folder's experiment "
                    f"({', '.join(sorted(map(str, allowed)))}); the row belongs to another "
                    "experiment."
                )
    return row


def _check_sweep_row(row: dict, where: str) -> None:
    """Types and ranges of an accuracy-sweep row's key columns and accuracy."""
    for name in ("workload", "format", "policy", "mask", "kind", "point_id"):
        if not isinstance(row[name], str):
            raise ResultsError(f"{where}: '{name}' must be a string. Got {row[name]!r}.")
    if row["kind"] not in POINT_KINDS:
        raise ResultsError(
            f"{where}: 'kind' must be one of {', '.join(POINT_KINDS)}. Got {row['kind']!r}."
        )
    for name in ("p", "p10"):
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ResultsError(f"{where}: '{name}' must be a probability in [0, 1]. Got {value!r}.")
        row[name] = float(value)
    if isinstance(row["repeat"], bool) or not isinstance(row["repeat"], int) or row["repeat"] < 0:
        raise ResultsError(f"{where}: 'repeat' must be an int >= 0. Got {row['repeat']!r}.")
    acc = row["accuracy"]
    if (
        isinstance(acc, bool)
        or not isinstance(acc, int | float)
        or not (math.isnan(acc) or 0 <= acc <= 1)
    ):
        raise ResultsError(f"{where}: 'accuracy' must be a fraction in [0, 1]. Got {acc!r}.")


def read_points_csv(
    path: str | os.PathLike,
    schema: RowSchema = SWEEP_ROWS,
    *,
    config: Mapping[str, Any] | None = None,
    digest: str | None = None,
) -> list[dict]:
    """Rows of a ``points.csv`` table, checked like :func:`read_log` (line numbers count the header)."""
    path = Path(path)
    try:
        frame = pd.read_csv(
            path,
            keep_default_na=False,
            na_values=["NaN", "nan", ""],
            converters=dict.fromkeys(schema.float_columns, exact_float),
        )
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path} is empty (not even a header); it is corrupt.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ResultsError(f"{path} is not a readable CSV table: {exc}".strip()) from None
    rows: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    numbered: list[tuple[int, dict]] = []
    for i, record in enumerate(frame.to_dict("records")):
        number = i + 2  # line 1 is the header
        where = f"{path} line {number}"
        row = {k: _from_csv(k, v, schema.float_columns) for k, v in record.items()}
        # CSV keeps no types: only the sweep's key columns are typed well enough to rehash.
        row = check_row(row, where, config, digest, schema, verify_id=schema == SWEEP_ROWS)
        _add_unique(rows, first_line, row, number, where)
        numbered.append((number, row))
    _check_tagged(numbered, path)
    return list(rows.values())


def exact_float(text: str) -> float | str:
    """A CSV cell as the float it was written from (Python's correctly rounded parser).

    pandas 2.x's default parser can miss by an ulp (2.1544346900318822e-08, a point of every
    shipped grid, reads back one ulp off), and a point's id hashes its exact p: such a
    ``points.csv`` read as corrupt at the end of every run. An empty cell is NaN; text that is
    not a number stays text, for the row's check to refuse with its line and column.
    """
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def _from_csv(column: str, value: Any, float_columns: tuple[str, ...] = FLOAT_COLUMNS) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value) and column not in float_columns:
        return None  # an empty cell
    if column in ("repeat", "seed", "n_images", "num_classes") and isinstance(value, float):
        if value.is_integer():
            return int(value)
    if column in float_columns and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if column == "coupled" and isinstance(value, str) and value in ("True", "False"):
        return value == "True"
    return value


def load_points(
    folder: str | os.PathLike, experiment: Mapping[str, Any], schema: RowSchema = SWEEP_ROWS
) -> pd.DataFrame:
    """The checked points of a results folder, from ``points.jsonl`` (else ``points.csv``).

    Never less than what the folder already shows: when ``points.csv`` holds a point that the
    store lacks, or a different value for one, this is an error rather than a silent loss.
    """
    folder = Path(folder)
    config, digest = experiment.get("config"), experiment.get("config_hash")
    log, table = folder / POINTS_LOG, folder / POINTS_CSV
    logged = read_log(log, schema, config=config, digest=digest) if log.exists() else []
    shown = read_points_csv(table, schema, config=config, digest=digest) if table.exists() else []
    if logged or (log.exists() and shown):
        by_id = {r["point_id"]: r for r in logged}
        lost = [r for r in shown if r["point_id"] not in by_id]
        if lost:
            raise ResultsError(
                f"{table} holds {len(lost)} point(s) that {log} lacks (the store was truncated "
                "or replaced); refusing to overwrite the table with less. Restore "
                f"{POINTS_LOG} or remove {POINTS_CSV}."
            )
        for r in shown:
            stored = by_id[r["point_id"]]
            measured = [c for c in r if c in schema.float_columns and c in stored]
            if not all(_same_value(r[c], stored[c]) for c in measured):
                raise ResultsError(
                    f"{table} and {log} disagree on the values of point {r['point_id']}; "
                    "one was edited or copied in from elsewhere."
                )
        return points_frame(logged, schema)
    if shown:
        return points_frame(shown, schema)
    raise ResultsError(
        f"{folder} holds no points ({POINTS_LOG} or {POINTS_CSV}); run a sweep first."
    )


def points_frame(rows: Iterable[Mapping[str, Any]], schema: RowSchema = SWEEP_ROWS) -> pd.DataFrame:
    """Rows as a frame with the schema's columns first, sorted by its key columns."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=list(schema.columns))
    known = tuple(schema.columns)
    if schema is SWEEP_ROWS and {"accuracy", "n_images"} <= set(frame.columns):
        n = frame["n_images"].to_numpy(dtype=float)
        correct = np.round(frame["accuracy"].to_numpy(dtype=float) * n)
        frame["accuracy_ci_low"], frame["accuracy_ci_high"] = wilson_interval(correct, n)
        known = (*known, *POINT_INTERVAL_COLUMNS)
    extra = [c for c in frame.columns if c not in known]
    frame = frame[[c for c in known if c in frame.columns] + sorted(extra)]
    return frame.sort_values(list(schema.key_columns), kind="mergesort").reset_index(drop=True)


def metadata(*, seed: int, digest: str, extra: Mapping[str, Any] | None = None) -> dict:
    """Versions, seed, code revision and schema version, saved next to the results."""
    import numpy
    import scipy
    import torch

    import memsim

    meta = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "config_hash": digest,
        "seed": seed,
        "memsim_version": memsim.__version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "pandas": pd.__version__,
            "torch": torch.__version__,
        },
    }
    meta.update(extra or {})
    return meta


def git_revision() -> str | None:
    """The code revision (git commit, ``+dirty`` when modified) or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _repair_torn_tail(log: Path) -> None:
    """Cut a partial last line (from a kill during a write) so appends start on a new line."""
    if not log.exists() or log.stat().st_size == 0:
        return
    with log.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())


def _jsonable(value: Any) -> Any:
    """JSON cannot hold NaN/inf portably: store them as strings and read them back."""
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _jsonable(value.item())
    return value


def _from_json(row: dict, float_columns: tuple[str, ...] = FLOAT_COLUMNS) -> dict:
    special = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    return {
        k: special.get(v, v) if isinstance(v, str) and k in float_columns else v
        for k, v in row.items()
    }
