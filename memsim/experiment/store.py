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
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memsim.fit import wilson_interval

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


class ResultsError(ValueError):
    """An output folder cannot be used: another experiment's results, not writable, corrupt."""


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Files are created with the usual permissions (mkstemp alone would make them private).
_FILE_MODE = 0o666 & ~_umask()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv_atomic(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write a table as CSV atomically (floats as shortest round-trip text, no index)."""
    return write_text_atomic(path, frame.to_csv(index=False))


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove it is writable, or raise :class:`ResultsError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except NotADirectoryError:
        raise ResultsError(
            f"Output folder {folder} is not a folder (a file is in the way)."
        ) from None
    except OSError as exc:
        raise ResultsError(
            f"Output folder {folder} is not writable ({exc.strerror or exc}). "
            "Choose another folder with --out."
        ) from None


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
    ) -> None:
        self.folder = folder
        self.schema = schema
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
        rows = {row["point_id"]: row for row in read_log(log, schema)}
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return cls(folder, fd, lock_fd, rows, schema)

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
        try:
            found = json.loads(marker.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ResultsError(
                f"{marker} is corrupt; remove the folder or choose another --out."
            ) from None
        if found.get("config_hash") != digest:
            raise ResultsError(
                f"Output folder {folder} holds results of a different experiment "
                f"(config hash {found.get('config_hash')}, this config {digest}). "
                "Refusing to mix them: choose another folder with --out."
            )
        return
    others = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    if others:
        raise ResultsError(
            f"Output folder {folder} is not empty and is not a memsim results folder "
            f"(found {', '.join(sorted(others)[:3])}). Choose an empty or new folder with --out."
        )
    payload = {"schema": SCHEMA, "version": SCHEMA_VERSION, "config_hash": digest, "config": config}
    write_text_atomic(marker, json.dumps(_jsonable(payload), indent=1, sort_keys=True))


def read_experiment(folder: str | os.PathLike) -> dict:
    """The ``experiment.json`` of a results folder (schema-checked)."""
    marker = Path(folder) / EXPERIMENT_FILE
    if not marker.is_file():
        raise ResultsError(
            f"{folder} is not a memsim results folder ({EXPERIMENT_FILE} is missing)."
        )
    payload = json.loads(marker.read_text())
    if payload.get("schema") != SCHEMA or payload.get("version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{marker} has schema {payload.get('schema')!r} version {payload.get('version')!r}; "
            f"this memsim reads {SCHEMA!r} version {SCHEMA_VERSION}."
        )
    return payload


def read_log(path: str | os.PathLike, schema: RowSchema = SWEEP_ROWS) -> list[dict]:
    """Rows of a ``points.jsonl`` file, first occurrence of each ``point_id`` only.

    A torn last line (an interrupted write) is skipped; a bad line elsewhere is an error.
    """
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    rows: dict[str, dict] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # torn tail: the write in progress when killed
                continue
            raise ResultsError(f"{path} line {number} is corrupt: {line[:80]!r}") from None
        rows.setdefault(row["point_id"], _from_json(row, schema.float_columns))
    return list(rows.values())


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
