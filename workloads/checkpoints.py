"""Checkpoint files: trained weights with the metadata that says what they are.

Sits between training (which writes them) and every workload's ``load_model`` (which reads
them). The format is the one of the shared reference checkpoints (``../shared/checkpoints``):
a dict with ``arch``, ``cfg``, ``state_dict`` (floating tensors stored as float16 by default),
``test_acc``, ``mean``, ``std`` and ``recipe``; memsim adds ``workload`` and ``data``. Files are
read with ``torch.load(..., weights_only=True)``, so loading never runs pickled code.

Integrity: files written by :func:`save_checkpoint` carry ``content_sha256``, a SHA-256 of the
weights and metadata, which :func:`load_checkpoint` verifies; the shared reference checkpoints
(which carry none) are checked against :data:`REFERENCE_SHA256` on first use
(:func:`verify_reference`). A mismatch is a :class:`CheckpointError`: a flipped byte in the
weights must never pass as a working network.

Errors are meant for people: a corrupted file names the file, a checkpoint for another
architecture names the missing/unexpected keys and mismatched shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

#: Keys every memsim checkpoint carries (the shared checkpoints' format).
REQUIRED_KEYS = ("arch", "state_dict")

#: How many offending keys an error message lists before summarising.
_SHOWN = 6

#: Key of the content hash in files written by :func:`save_checkpoint`.
HASH_KEY = "content_sha256"

#: SHA-256 of the whole file of each shared reference checkpoint (``../shared/checkpoints``).
REFERENCE_SHA256 = {
    "vgg_A.pt": "7c090f341b0846b4f4a700cf3a644f564ca7d75a27da8a9e8f028175fafdfea4",
    "vgg_E.pt": "c4d5f88fd2e2eda462a968d66a4c1bcce6b222b35747606e631cba4cdaa85675",
}

#: Files already verified in this process, by (path, size, modification time).
_VERIFIED: set[tuple[str, int, int]] = set()


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not fit the model it is loaded into."""


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | Mapping[str, torch.Tensor],
    *,
    arch: str,
    weight_dtype: torch.dtype = torch.float16,
    **metadata: object,
) -> Path:
    """Write ``model``'s weights and ``metadata`` to ``path`` (atomically).

    Parameters
    ----------
    path : path
        Destination file; parent folders are created.
    model : nn.Module or state dict
    arch : str
        Architecture tag checked again at load time (for example ``"A"`` for VGG-A).
    weight_dtype : torch.dtype
        Storage dtype of floating tensors (float16 like the shared checkpoints; integer
        buffers such as ``num_batches_tracked`` are kept as they are).
    **metadata
        Plain values (numbers, strings, lists, dicts): ``cfg``, ``test_acc``, ``mean``, ``std``,
        ``recipe``, ``workload``, ``data``...

    Returns
    -------
    Path
        The written file.
    """
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    stored = {
        key: (
            t.detach().to("cpu", weight_dtype) if t.is_floating_point() else t.detach().cpu()
        ).clone()
        for key, t in state.items()
    }
    payload = {"arch": arch, **metadata, "state_dict": stored}
    payload[HASH_KEY] = content_hash(payload)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # Opened here, not by torch.save: an unwritable folder is then an OSError (PermissionError).
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)  # readers never see a half-written file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def content_hash(payload: Mapping) -> str:
    """SHA-256 of a checkpoint's weights (names, dtypes, shapes, bytes) and metadata."""
    h = hashlib.sha256()
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", HASH_KEY)}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for key in sorted(payload["state_dict"]):
        t = payload["state_dict"][key]
        h.update(f"\0{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_reference(path: str | os.PathLike) -> None:
    """Check a shared reference checkpoint against :data:`REFERENCE_SHA256` (once per process).

    Raises
    ------
    CheckpointError
        The file's hash differs from the one recorded for its name.
    """
    path = Path(path)
    expected = REFERENCE_SHA256.get(path.name)
    if expected is None:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    found = file_sha256(path)
    if found != expected:
        raise CheckpointError(
            f"Reference checkpoint {path} is corrupted: its SHA-256 is {found[:16]}…, "
            f"the reference {path.name} has {expected[:16]}…. Restore the file."
        )
    _VERIFIED.add(key)


def _load_failure(exc: BaseException) -> str:
    """What ``torch.load`` said, in one line: for a file that pickles code (refused by
    ``weights_only=True``), the global it names, not torch's advice to load it with
    ``weights_only=False``, which would run that code."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error:"):
            detail = line.removeprefix("WeightsUnpickler error:").strip()
            if not detail and i + 1 < len(lines):  # garbage bytes: the reason is on the next line
                detail = lines[i + 1]
            return f"WeightsUnpickler error: {detail}".split(" Please ")[0]
    # Never pass on the advice to load with weights_only=False.
    lines = [line for line in lines if "weights_only" not in line]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint file with ``weights_only=True``.

    A bare state dict (name → tensor) is accepted too and wrapped as ``{"arch": None,
    "state_dict": ...}``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is corrupted or is not a checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Checkpoint file {path} is a folder; name the checkpoint file.")
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file {path} does not exist.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/foreign files
        raise CheckpointError(
            f"Checkpoint file {path} is corrupted or not a PyTorch checkpoint "
            f"({_load_failure(exc)})."
        ) from None
    if isinstance(payload, Mapping) and "state_dict" not in payload:
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return {"arch": None, "state_dict": dict(payload)}
    if not isinstance(payload, Mapping) or not isinstance(payload.get("state_dict"), Mapping):
        raise CheckpointError(
            f"Checkpoint file {path} holds no 'state_dict' (found {type(payload).__name__}"
            + (f" with keys {sorted(payload)[:_SHOWN]}" if isinstance(payload, Mapping) else "")
            + ")."
        )
    stored_hash = payload.get(HASH_KEY)
    if stored_hash is not None and content_hash(payload) != stored_hash:
        raise CheckpointError(
            f"Checkpoint file {path} is corrupted: its content does not match its "
            f"{HASH_KEY} (the weights or metadata changed after it was written)."
        )
    return dict(payload)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def load_state(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str | os.PathLike = "the checkpoint",
) -> nn.Module:
    """Copy ``state_dict`` into ``model``, casting floating tensors to the model's dtypes.

    Raises
    ------
    CheckpointError
        Keys or shapes differ; the message lists missing keys, unexpected keys and shape
        mismatches instead of torch's traceback.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {_listing(shapes)}")
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__} "
            f"(a checkpoint for another architecture?); {'; '.join(parts)}."
        )
    cast = {
        k: (v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v)
        for k, v in state_dict.items()
    }
    model.load_state_dict(cast)
    return model


def check_arch(payload: Mapping, expected: str, source: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` when a checkpoint's ``arch`` tag names another architecture.

    Bare state dicts (``arch`` None) pass; their keys and shapes are checked by :func:`load_state`.
    """
    arch = payload.get("arch")
    if arch is not None and str(arch) != str(expected):
        raise CheckpointError(
            f"Checkpoint {source} is for architecture '{arch}', not '{expected}'."
        )
