"""The write trace: one record per tensor written during one inference.

It is the arrow between the accuracy side and the cost side (docs/design.md §2): workloads produce it
with forward hooks (``memsim.trace.capture``), the memory model (``memsim.timing``) consumes it.
Sizes are per inference of one input (the batch dimension is divided out); bit statistics are
measured on real data.

The file format is JSON with a ``schema`` name and integer ``version``; loading a file of
another version is an error that says which version was found and which is expected.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from memsim.paths import check_output_file, write_text_atomic

TRACE_SCHEMA = "memsim.trace"
TRACE_VERSION = 1

ROLES = ("activation", "input", "weight", "bias")


class TraceError(ValueError):
    """A trace file is unreadable, of the wrong version, or inconsistent."""


@dataclass(frozen=True)
class WriteRecord:
    """One tensor written to memory.

    Attributes
    ----------
    index : int
        Position in execution order, from 0.
    name : str
        Module name (``features.3``) or ``input`` / ``<module>.weight``.
    module_type : str
        Class name of the producing module (``Conv2d``, ``ReLU``, ...).
    role : str
        ``activation``, ``input``, ``weight`` or ``bias``.
    shape : tuple of int
        Shape of the tensor for one inference (no batch dimension).
    numel : int
        Elements written per inference.
    format : str
        Storage format name (see :mod:`memsim.formats`).
    bits : int
        Bits per element in the storage format.
    ops : int
        Multiply-accumulate (or elementary) operations of the producing layer per inference,
        used for compute time. 0 for weights and the input.
    ones_fraction : tuple of float
        Fraction of stored ones per bit position (MSB-first, length ``bits``), measured on
        real data. With ``zero_fraction`` this is enough to estimate SET/RESET transitions.
    zero_fraction : float
        Fraction of elements whose whole stored word is zero (ReLU outputs are zero-heavy).
    """

    index: int
    name: str
    module_type: str
    role: str
    shape: tuple[int, ...]
    numel: int
    format: str
    bits: int
    ops: int = 0
    ones_fraction: tuple[float, ...] = ()
    zero_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise TraceError(
                f"WriteRecord '{self.name}': role must be one of {ROLES}. Got {self.role!r}."
            )
        if self.numel != math.prod(self.shape):
            raise TraceError(
                f"WriteRecord '{self.name}': numel {self.numel} does not match shape {self.shape}."
            )
        if self.ones_fraction and len(self.ones_fraction) != self.bits:
            raise TraceError(
                f"WriteRecord '{self.name}': ones_fraction has {len(self.ones_fraction)} entries, "
                f"expected one per bit ({self.bits})."
            )

    @property
    def total_bits(self) -> int:
        """Bits written per inference."""
        return self.numel * self.bits

    @property
    def bytes(self) -> float:
        """Bytes written per inference."""
        return self.total_bits / 8


@dataclass(frozen=True)
class Trace:
    """The ordered writes of one inference of ``workload`` stored in ``format``."""

    workload: str
    format: str
    records: tuple[WriteRecord, ...]
    images_measured: int = 1
    meta: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[WriteRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def activations(self) -> list[WriteRecord]:
        """Records of activation (and input) writes, in order."""
        return [r for r in self.records if r.role in ("activation", "input")]

    @property
    def written_elements(self) -> int:
        """Activation elements written per inference (input included if traced)."""
        return sum(r.numel for r in self.activations())

    @property
    def written_bits(self) -> int:
        return sum(r.total_bits for r in self.activations())

    def to_frame(self) -> pd.DataFrame:
        """One row per record; ``ones_fraction`` kept as a tuple column."""
        rows = []
        for r in self.records:
            row = asdict(r)
            row["total_bits"] = r.total_bits
            rows.append(row)
        return pd.DataFrame(rows)

    def repeated(self, times: int) -> Trace:
        """This trace's records ``times`` over (for benchmarks: a trace twice as long)."""
        records: list[WriteRecord] = []
        for t in range(times):
            for r in self.records:
                records.append(
                    replace(r, index=len(records), name=r.name if t == 0 else f"{r.name}#{t}")
                )
        return replace(self, records=tuple(records))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the trace as versioned JSON, atomically; returns the path.

        A path that cannot be written (see :func:`check_output_file`) is a ``ValueError``
        before anything is written; a failed write leaves no temporary file behind.
        """
        path = check_output_file(path)
        payload = {
            "schema": TRACE_SCHEMA,
            "version": TRACE_VERSION,
            "workload": self.workload,
            "format": self.format,
            "images_measured": self.images_measured,
            "meta": self.meta,
            "records": [asdict(r) for r in self.records],
        }
        return write_text_atomic(path, json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trace:
        """Read a trace file; wrong schema or version is a :class:`TraceError`."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except FileNotFoundError:
            raise TraceError(f"Trace file {path} does not exist.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TraceError(f"Trace file {path} is not valid JSON: {exc}") from None
        if not isinstance(payload, dict) or payload.get("schema") != TRACE_SCHEMA:
            raise TraceError(
                f"{path} is not a memsim trace file (schema {TRACE_SCHEMA!r} missing)."
            )
        if payload.get("version") != TRACE_VERSION:
            raise TraceError(
                f"Trace file {path} has version {payload.get('version')!r}; this memsim reads "
                f"version {TRACE_VERSION}. Re-create it with `memsim trace`."
            )
        try:
            records = tuple(
                WriteRecord(
                    **{**r, "shape": tuple(r["shape"]), "ones_fraction": tuple(r["ones_fraction"])}
                )
                for r in payload["records"]
            )
            return cls(
                workload=payload["workload"],
                format=payload["format"],
                records=records,
                images_measured=payload.get("images_measured", 1),
                meta=payload.get("meta", {}),
            )
        except (KeyError, TypeError) as exc:
            raise TraceError(
                f"Trace file {path} is missing or has malformed fields: {exc}"
            ) from None


def make_trace(workload: str, format: str, records: Sequence[WriteRecord], **kw) -> Trace:
    """Build a trace, re-indexing the records in the order given."""
    recs = tuple(replace(r, index=i) for i, r in enumerate(records))
    return Trace(workload=workload, format=format, records=recs, **kw)
