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
#: from 62 random bits. 5: torch generators on a CPU take all 64 bits of a noise seed
#: (:func:`seeded_torch_generator`), not only the low 32.
NOISE_DRAWS = 5


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


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
#: Bytes of a CPU generator's state (torch's ``THGeneratorState`` then the float normal cache):
#: initial seed (uint64), left (int32), seeded (int32), next (uint64), then the Mersenne
#: Twister's 624 words, each in a uint64. Checked against ``manual_seed`` before first use.
_MT_WORDS = 624
_MT_STATE_AT = 24
_cpu_state_template: torch.Tensor | None = None


def seeded_torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator on ``device`` whose stream depends on all 64 bits of ``seed``.

    CUDA's Philox generator takes a 64-bit seed, but a CPU generator's ``manual_seed`` keeps
    only the low 32 bits for its Mersenne Twister (seeds ``2**32`` apart give the same stream):
    a sweep makes millions of noise writes, each with its own seed, and ``n`` writes hold about
    ``n**2 / 2**33`` pairs with equal low halves (a hundred for a million), each flipping the
    same bits twice. On a CPU the Twister's 624 state
    words are instead filled from SplitMix64's stream keyed by the seed (the seeding Vigna
    recommends for large-state generators), which makes every seed's stream its own.
    """
    gen = torch.Generator(device=device)
    if gen.device.type != "cpu":
        gen.manual_seed(seed)
        return gen
    state = _cpu_state(int(seed) & _MASK64)
    gen.set_state(state)
    return gen


#: SplitMix64's counter steps ``n * gamma`` (n = 1..624) of the Twister's state words.
_MT_STEPS = np.arange(1, _MT_WORDS + 1, dtype=np.uint64) * _GAMMA


def _cpu_state(seed: int) -> torch.Tensor:
    """The state bytes of a CPU generator whose Twister words are ``splitmix64(seed, n) >> 32``."""
    raw = _cpu_template().numpy().copy()
    # About 13 us a generator (manual_seed: 1 us), mostly NumPy calls on 624 words.
    z = _MT_STEPS + np.uint64(seed)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    z >>= np.uint64(32)  # 32-bit state words
    z[0] |= np.uint64(1 << 31)  # never the all-zero state (only word 0's top bit counts)
    raw[_MT_STATE_AT : _MT_STATE_AT + 8 * _MT_WORDS].view(np.uint64)[:] = z
    raw[:8].view(np.uint64)[0] = np.uint64(seed)  # what initial_seed() reports
    return torch.from_numpy(raw)


def _cpu_template() -> torch.Tensor:
    """A freshly seeded CPU generator's state (next draw regenerates the Twister's block),
    after checking that its layout is the one :func:`_cpu_state` writes."""
    global _cpu_state_template
    if _cpu_state_template is None:
        probe = 20261130
        gen = torch.Generator()
        gen.manual_seed(probe)
        raw = gen.get_state().numpy()
        # init_genrand(probe), as torch's manual_seed does
        expected = np.random.RandomState(probe).get_state(legacy=False)["state"]["key"]
        words = raw[_MT_STATE_AT : _MT_STATE_AT + 8 * _MT_WORDS]
        if (
            raw.size < _MT_STATE_AT + 8 * _MT_WORDS
            or raw[:8].view(np.uint64)[0] != probe
            or not np.array_equal(words.view(np.uint64), expected.astype(np.uint64))
            or raw[8:16].view(np.int32).tolist() != [1, 1]
            or raw[16:24].view(np.uint64)[0] != 0
        ):
            raise RuntimeError(
                f"torch {torch.__version__}: a CPU generator's state is not laid out as "
                "memsim.rng expects (seed, left, seeded, next, 624 Twister words); "
                "seeded_torch_generator cannot seed it with 64 bits."
            )
        _cpu_state_template = torch.from_numpy(raw.copy())
    return _cpu_state_template


def torch_generator(
    seed: int | None, *key: object, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``child_seed(seed, *key)``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(child_seed(seed, *key))
    return gen
