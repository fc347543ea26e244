"""Where memsim writes: output folders and files, checked before anything is computed.

Every entry point that writes (a run's results folder, a trace, a trained checkpoint) checks its
destination here first, so a bad ``--out`` fails at once with one line naming the path; files
are written whole or not at all (:func:`write_bytes_atomic`, :func:`write_text_atomic`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from memsim.errors import ResultsError

__all__ = ["check_output_file", "check_writable", "write_bytes_atomic", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Files are created with the usual permissions (mkstemp alone would make them private).
_FILE_MODE = 0o666 & ~_umask()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder and a rename."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove it is writable, or raise :class:`ResultsError`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except (NotADirectoryError, FileExistsError):
        raise ResultsError(
            f"Output folder {folder} is not a folder (a file is in the way)."
        ) from None
    except OSError as exc:
        raise ResultsError(
            f"Output folder {folder} is not writable ({exc.strerror or exc}). "
            "Choose another folder with --out."
        ) from None


def check_output_file(
    path: str | os.PathLike, *, missing_parent: Literal["refuse", "allow", "create"] = "refuse"
) -> Path:
    """``path`` as a :class:`~pathlib.Path` when a file can be written there, else a one-line
    ``ValueError`` naming it.

    Call it before computing what goes into the file (a trace, a training run), so that a bad
    ``--out`` fails at once. Refused: an empty path, a path ending in a separator, an existing
    folder, a parent folder that is not a folder or not writable (checked by writing and
    removing a probe file there), and a missing parent folder, unless ``missing_parent`` is
    ``"allow"`` (checked only: the nearest existing folder above must be writable) or
    ``"create"`` (the same, then the missing folders are made, for a path that passed every
    check). An existing file is fine: it is replaced.
    """
    text = os.fsdecode(os.fspath(path))
    if not text:
        raise ValueError("Output file path is empty; name a file to write.")
    separators = tuple(s for s in (os.sep, os.altsep) if s)
    if text.endswith(separators):
        raise ValueError(f"Output file {text} ends in a path separator; name a file, not a folder.")
    target = Path(text)
    if target.is_dir():
        raise ValueError(f"Output file {target} is an existing folder; name a file to write.")
    parent = target.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != parent and missing_parent == "refuse":
        raise ValueError(
            f"Folder {parent} of output file {target} does not exist; create it first."
        )
    if not existing.is_dir():
        raise ValueError(f"Folder {existing} of output file {target} is not a folder.")
    check_writable(existing)  # ResultsError (a ValueError): "Output folder ... is not writable"
    if missing_parent == "create":
        parent.mkdir(parents=True, exist_ok=True)
    return target
