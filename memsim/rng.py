"""Seeds by stable names: one run seed spawns every child seed memsim needs.

Results must not depend on worker count or execution order, so no code draws from global
random state. A child seed is a pure function of the run seed and a path of names/integers,
for example ``child_seed(run_seed, "sweep", "vgg_A", "float32", "baseline", p_index, repeat)``.
"""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import torch

SeedLike = int | np.random.SeedSequence | None

#: How noise draws follow from seeds. A results folder records it, and a run is never resumed
#: in a folder written with other draws: its points would not be those of a fresh run with the
#: same seed. 1: whole batches, NumPy block counts. 2: tiles of 32 images on a CPU, block counts
#: drawn in the kernels, symmetric rates by parity (docs/design.md §3). 3: coupled (ladder)
#: draws as unions of Poisson hits per level. 4: the torch engine (CUDA tensors) draws coupled
#: writes as unions of Poisson hits too, sizes its sparse blocks by rate and draws positions
#: from 62 random bits.
NOISE_DRAWS = 4


_MASK64 = (1 << 64) - 1


def splitmix64(key: int, n: int) -> int:
    """Element ``n`` of SplitMix64's stream keyed by ``key``: its output function applied to
    ``key + n * 0x9E3779B97F4A7C15`` (mod 2**64), in Python integers (about a microsecond, where
    :func:`child_seed` costs ~16 us). For cheap per-index sub-seeds in hot paths."""
    z = (key + n * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _key_words(key: tuple[object, ...]) -> list[int]:
    """Stable 32-bit words for a tuple of names/numbers (independent of PYTHONHASHSEED)."""
    words: list[int] = []
    for part in key:
        digest = hashlib.blake2b(repr(part).encode(), digest_size=8).digest()
        words.extend(int.from_bytes(digest[i : i + 4], "little") for i in (0, 4))
    return words


def child_seed(seed: int | None, *key: object) -> int:
    """A 63-bit seed derived from ``seed`` and the names in ``key``.

    ``seed=None`` draws fresh entropy (a new, unrepeatable seed on every call).
    """
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int or None. Got {seed!r}.")
    if not 0 <= seed <= 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"seed must be an int in [0, 2**64 - 1]. Got {seed}.")
    ss = np.random.SeedSequence([int(seed), *_key_words(key)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def generator(seed: int | None, *key: object) -> np.random.Generator:
    """A NumPy generator for ``child_seed(seed, *key)``."""
    return np.random.default_rng(child_seed(seed, *key))


def torch_generator(
    seed: int | None, *key: object, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``child_seed(seed, *key)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(child_seed(seed, *key))
    return gen
