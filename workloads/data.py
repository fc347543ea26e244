"""Image data sets on disk → uint8 tensors in memory (CIFAR-10 and any ImageFolder tree).

First stage of the data flow for image workloads: files are decoded once per process (and,
for whole splits, cached on disk under the memsim cache folder) into one uint8 tensor, so
evaluation is never data-loader bound. Workloads normalise these tensors themselves.

Where the data comes from (first that applies):

1. the ``data_root`` argument (a workload option or config key);
2. the ``MEMSIM_DATA`` environment variable;
3. ``<repo>/../shared/data`` (or ``$MEMSIM_SHARED/data``) when present.

Inside the root, CIFAR-10 is found as an ImageFolder tree (``cifar10-jpeg/{train,test}`` or
``{train,test}``) or as torchvision's ``cifar-10-batches-py``. Nothing is downloaded unless
``download=True`` is passed explicitly (``memsim train --download``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from memsim.rng import generator
from workloads.base import cache_dir, check_limit, check_split

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
#: Per-channel mean/std of the CIFAR-10 training images scaled to [0, 1] (the shared checkpoints').
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Images per split of torchvision's CIFAR-10 (cifar-10-batches-py).
CIFAR10_SPLIT_SIZES = {"train": 50_000, "test": 10_000}

#: Decoded whole splits of this process, keyed by (source folder, split): (x, y, class count).
_MEMORY: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor, int]] = {}


def shared_dir() -> Path:
    """The shared folder next to the repository (``MEMSIM_SHARED``, else ``<repo>/../shared``)."""
    env = os.environ.get("MEMSIM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path | None:
    """The data root to search: argument, else ``MEMSIM_DATA``, else the shared data folder.

    Returns ``None`` when nothing is configured and no shared folder exists.
    """
    if data_root is not None:
        return Path(data_root).expanduser()
    env = os.environ.get("MEMSIM_DATA")
    if env:
        return Path(env).expanduser()
    shared = shared_dir() / "data"
    return shared if shared.is_dir() else None


def _how_to_get(what: str) -> str:
    return (
        f"{what} Set the MEMSIM_DATA environment variable (or the 'data_root' option / config "
        "key) to a folder holding cifar10-jpeg/{train,test}/<class>/*.jpg, {train,test}/<class>/"
        "*.jpg or torchvision's cifar-10-batches-py; or download it with torchvision by passing "
        "download=True (`memsim train --download`)."
    )


def find_cifar10(data_root: str | os.PathLike | None, split: str) -> tuple[str, Path]:
    """Locate a CIFAR-10 split: ``("folder", path)`` or ``("torchvision", root)``.

    Raises
    ------
    FileNotFoundError
        Nothing found; the message says where it looked and how to get the data.
    """
    root = resolve_data_root(data_root)
    if root is None:
        raise FileNotFoundError(_how_to_get("CIFAR-10 data not found: no data root is configured."))
    if not root.is_dir():
        raise FileNotFoundError(_how_to_get(f"CIFAR-10 data root {root} does not exist."))
    candidates = [root / "cifar10-jpeg" / split, root / split]
    for folder in candidates:
        if folder.is_dir():
            return "folder", folder
    if (root / "cifar-10-batches-py").is_dir():
        return "torchvision", root
    looked = ", ".join(str(c) for c in [*candidates, root / "cifar-10-batches-py"])
    raise FileNotFoundError(
        _how_to_get(f"CIFAR-10 '{split}' split not found (looked in {looked}).")
    )


def fixed_order(labels: np.ndarray, key: str) -> np.ndarray:
    """A fixed, class-stratified order: any prefix holds the classes in proportion.

    Each class is shuffled with a seed derived from ``key``, then classes are interleaved by
    relative rank, so ``limit=1000`` of CIFAR-10's test set holds exactly 100 per class.
    """
    rng = generator(0, "data-order", key)
    position = np.empty(len(labels), dtype=np.float64)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        position[rng.permutation(idx)] = (np.arange(len(idx)) + 0.5) / len(idx)
    return np.lexsort((labels, position))


def _list_image_folder(
    folder: Path, num_classes: int | None
) -> tuple[list[str], list[Path], np.ndarray]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"Data set folder {folder} has no class sub-folders (expected <class>/<image>)."
        )
    if num_classes is not None and len(classes) != num_classes:
        raise ValueError(
            f"Data set folder {folder} has {len(classes)} class folders ({', '.join(classes[:12])}"
            f"{'...' if len(classes) > 12 else ''}); the workload expects {num_classes} classes."
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        found = sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files.extend(found)
        labels.extend([label] * len(found))
    if not files:
        raise ValueError(
            f"Data set folder {folder} is empty: no {'/'.join(IMAGE_SUFFIXES)} files in its "
            f"{len(classes)} class folders."
        )
    return classes, files, np.asarray(labels, dtype=np.int64)


def count_image_folder(folder: Path, num_classes: int | None) -> int | None:
    """The number of images of an ImageFolder tree, from its listing (nothing is decoded);
    ``None`` for a folder that is not one (loading it says why)."""
    try:
        return len(_list_image_folder(folder, num_classes)[1])
    except (OSError, ValueError):
        return None


def _decode(files: list[Path], folder: Path) -> torch.Tensor:
    # PIL is what torchvision's ImageFolder (and the shared checkpoints' evaluation) decodes with.
    from PIL import Image, UnidentifiedImageError

    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                images.append(np.asarray(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as exc:
            raise ValueError(f"Cannot decode image {f}: {exc}") from None
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"Images in {folder} differ in size ({sorted(shapes)[:4]}); resize them first."
        )
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _disk_cache_path(folder: Path, split: str, files: list[Path]) -> Path:
    digest = hashlib.sha1(str(folder.resolve()).encode())
    for f in files:
        digest.update(f"{f.parent.name}/{f.name}:{f.stat().st_size}\n".encode())
    return cache_dir() / "data" / f"{folder.parent.name}-{split}-{digest.hexdigest()[:16]}.pt"


def load_image_folder(
    folder: str | os.PathLike,
    *,
    split: str = "test",
    num_classes: int | None = None,
    limit: int | None = None,
    disk_cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode an ImageFolder tree (``<folder>/<class>/<image>``) into tensors.

    Parameters
    ----------
    folder : path
    split : str
        Only names the cache entry and the fixed order.
    num_classes : int, optional
        Expected number of class folders (a mismatch is a ValueError).
    limit : int, optional
        First ``limit`` samples of the fixed stratified order (see :func:`fixed_order`); only
        those files are decoded when the whole split is not cached yet.
    disk_cache : bool
        Keep a decoded whole split under the memsim cache folder.

    Returns
    -------
    x : uint8 Tensor, shape (N, 3, H, W)
    y : int64 Tensor, shape (N,)
    """
    folder = Path(folder)
    limit = check_limit(limit)
    key = (str(folder.resolve()), split)
    if key not in _MEMORY:
        classes, files, labels = _list_image_folder(folder, num_classes)
        order = fixed_order(labels, split)
        cached = _disk_cache_path(folder, split, files) if disk_cache else None
        if cached is not None and cached.is_file():
            try:
                x, y = torch.load(cached, weights_only=True)
                _MEMORY[key] = (x, y, len(classes))
            except Exception:  # a stale or broken cache entry is rebuilt, not fatal
                cached.unlink(missing_ok=True)
        if key not in _MEMORY:
            if limit is not None and limit < len(files):  # decode just the subset
                chosen = order[:limit]
                x = _decode([files[i] for i in chosen], folder)
                return x, torch.from_numpy(labels[chosen])
            x = _decode([files[i] for i in order], folder)
            y = torch.from_numpy(labels[order])
            _MEMORY[key] = (x, y, len(classes))
            if cached is not None:
                _save_quietly(cached, (x, y))
    x, y, found = _MEMORY[key]
    if num_classes is not None and found != num_classes:
        raise ValueError(
            f"Data set folder {folder} has {found} class folders; the workload expects {num_classes} classes."
        )
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def _save_quietly(path: Path, obj: object) -> None:
    """Best-effort cache write (a read-only cache folder only costs speed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:  # not torch.save(obj, tmp): that raises RuntimeError
            torch.save(obj, fh)
        os.replace(tmp, path)
    except OSError:
        pass


def _load_torchvision(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(_how_to_get(f"torchvision CIFAR-10 in {root}: {exc}")) from None
    x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = np.asarray(ds.targets, dtype=np.int64)
    order = fixed_order(labels, split)
    return x[torch.from_numpy(order)], torch.from_numpy(labels[order])


def load_cifar10(
    split: str,
    *,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as uint8 images (N, 3, 32, 32) and int64 labels, in a fixed stratified order.

    Parameters
    ----------
    split : {"train", "test"}
    data_root : path, optional
        See the module docstring for the search order.
    download : bool
        Fetch the data set with torchvision when it is not found (into ``data_root``, else
        ``MEMSIM_DATA``, else ``<cache>/data``). Never implied.
    limit : int, optional
        Number of images (a representative prefix).
    """
    check_split(split)
    limit = check_limit(limit)
    try:
        kind, where = find_cifar10(data_root, split)
    except FileNotFoundError:
        if not download:
            raise
        root = resolve_data_root(data_root)
        kind, where = "torchvision", (root if root is not None else cache_dir() / "data")
        where.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        x, y = load_image_folder(where, split=split, num_classes=len(CIFAR10_CLASSES), limit=limit)
    else:
        key = (str(where.resolve()), split)
        if key not in _MEMORY:
            _MEMORY[key] = (*_load_torchvision(where, split, download), len(CIFAR10_CLASSES))
        x, y, _ = _MEMORY[key]
        x, y = (x[:limit], y[:limit]) if limit is not None else (x, y)
    if tuple(x.shape[1:]) != (3, 32, 32):
        raise ValueError(f"CIFAR-10 images must be 3x32x32; {where} holds {tuple(x.shape[1:])}.")
    return x, y


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 images → float32 in [0, 1] → per-channel ``(x - mean) / std``."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x.to(torch.float32) / 255.0 - m) / s


class Cifar10Data:
    """CIFAR-10 as a workload's data: normalised tensors per split, crop + flip augmentation.

    Parameters
    ----------
    data_root : path, optional
        Where to look (see the module docstring).
    download : bool
        Allow torchvision to download CIFAR-10 when it is not found.
    """

    num_classes = len(CIFAR10_CLASSES)
    input_shape = (3, 32, 32)
    mean = CIFAR10_MEAN
    std = CIFAR10_STD

    def __init__(self, data_root: str | os.PathLike | None = None, download: bool = False) -> None:
        self.data_root = data_root
        self.download = bool(download)
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor, bool]] = {}

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float32 images (N, 3, 32, 32) and int64 labels (see :func:`load_cifar10`)."""
        check_split(split)
        limit = check_limit(limit)
        have = self._splits.get(split)  # (x, y, whole split?)
        if have is None or not (have[2] or (limit is not None and limit <= len(have[1]))):
            raw, y = load_cifar10(
                split, data_root=self.data_root, download=self.download, limit=limit
            )
            have = (normalize(raw, self.mean, self.std), y, limit is None or len(y) < limit)
            self._splits[split] = have
        x, y, _ = have
        return (x[:limit], y[:limit]) if limit is not None else (x, y)

    def split_size(self, split: str) -> int | None:
        """Images of ``split`` (see :meth:`workloads.base.Workload.split_size`)."""
        check_split(split)
        have = self._splits.get(split)
        if have is not None and have[2]:
            return len(have[1])
        try:
            kind, where = find_cifar10(self.data_root, split)
        except FileNotFoundError:
            return None
        if kind == "torchvision":
            return CIFAR10_SPLIT_SIZES[split]
        return count_image_folder(where, self.num_classes)

    def describe(self) -> str:
        """Where the data comes from, for checkpoint metadata."""
        root = resolve_data_root(self.data_root)
        return f"CIFAR-10 from {root if root is not None else 'torchvision download'}"

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random 32×32 crop of the 4-pixel reflect-padded batch, then random horizontal flip."""
        n, c, h, w = x.shape
        pad = 4
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (n, 1, h, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (n, 1, 1, w)
        flip = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
        return padded[
            torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols
        ]
