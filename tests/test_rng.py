"""Seeds by name: stable, distinct, independent of call order."""

from __future__ import annotations

import numpy as np
import pytest

from memsim.rng import child_seed, generator, torch_generator


def test_child_seed_is_stable_and_distinct():
    a = child_seed(7, "sweep", "digits", 3)
    assert a == child_seed(7, "sweep", "digits", 3)
    assert a != child_seed(7, "sweep", "digits", 4)
    assert a != child_seed(8, "sweep", "digits", 3)
    assert 0 <= a < 2**63


def test_none_seed_draws_fresh_entropy():
    assert child_seed(None, "x") != child_seed(None, "x")


def test_generators_reproduce():
    assert np.array_equal(generator(1, "a").random(5), generator(1, "a").random(5))
    import torch

    t1 = torch.rand(4, generator=torch_generator(1, "a"))
    t2 = torch.rand(4, generator=torch_generator(1, "a"))
    assert torch.equal(t1, t2)


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_bad_seeds_rejected(bad):
    with pytest.raises((TypeError, ValueError)):
        child_seed(bad, "x")


def test_cpu_noise_generators_use_all_64_bits_of_a_seed():
    """A CPU generator's manual_seed keeps the low 32 bits: seeds 2**32 apart drew the same
    noise. The noise engines' generators differ there, and repeat for the same seed."""
    import torch

    from memsim.rng import seeded_torch_generator

    seed = 0x1234_5678_9ABC
    same = torch.rand(64, generator=seeded_torch_generator(seed))
    assert torch.equal(same, torch.rand(64, generator=seeded_torch_generator(seed)))
    for other in (seed + (1 << 32), seed ^ (1 << 63)):
        assert not torch.equal(same, torch.rand(64, generator=seeded_torch_generator(other)))
    assert seeded_torch_generator(2**64 - 1).initial_seed() == 2**64 - 1


def test_a_cpu_noise_generator_is_the_twister_keyed_by_splitmix64_of_the_seed():
    """The stream is pinned: NumPy's MT19937 given the 624 words ``splitmix64(seed, n) >> 32``
    (n = 1..624, word 0's top bit set), computed here in Python integers, draws the same
    32-bit words (a state left un-twisted, or filled from the low halves, draws others)."""
    import torch

    from memsim.rng import seeded_torch_generator, splitmix64

    for seed in (0, 0xDEAD_BEEF_1234_5, 2**64 - 1):
        key = np.array([splitmix64(seed, n) >> 32 for n in range(1, 625)], dtype=np.uint32)
        key[0] |= np.uint32(1 << 31)
        twister = np.random.MT19937()
        state = twister.state
        state["state"] = {"key": key, "pos": 624}
        twister.state = state
        words = twister.random_raw(64)
        # torch draws 64 bits (two words) for a range of 2**32 and keeps the low word.
        drawn = torch.randint(
            0, 2**32, (32,), generator=seeded_torch_generator(seed), dtype=torch.int64
        )
        assert np.array_equal(drawn.numpy(), words[1::2].astype(np.int64))


def test_cpu_noise_generators_of_consecutive_seeds_draw_independent_uniforms():
    """The Twister's state is filled from SplitMix64 of the seed: the first draws of
    consecutive seeds are uniform and uncorrelated (a filling without mixing fails this)."""
    import torch
    from scipy import stats

    from memsim.rng import seeded_torch_generator

    first = np.array(
        [torch.rand(2, generator=seeded_torch_generator(s)).tolist() for s in range(4000)]
    )
    assert stats.kstest(first[:, 0], "uniform").pvalue > 1e-4
    assert stats.kstest(first[:, 1], "uniform").pvalue > 1e-4
    assert abs(stats.pearsonr(first[:-1, 0], first[1:, 0]).statistic) < 0.07  # 4.4 sigma


@pytest.mark.parametrize("engine", ["reference", "torch"])
def test_cpu_engines_flip_other_bits_for_seeds_2_to_the_32_apart(engine):
    import torch

    from memsim.noise import flip

    zeros = torch.zeros(4096, dtype=torch.int8)
    seed = 77
    a = flip(zeros, 0.3, seed=seed, engine=engine)
    b = flip(zeros, 0.3, seed=seed + (1 << 32), engine=engine)
    assert torch.equal(a, flip(zeros, 0.3, seed=seed, engine=engine))
    assert not torch.equal(a, b)


def test_torch_generators_of_seeds_2_to_the_32_apart_draw_differently():
    """``torch_generator`` (training: shuffling, augmentation, error-aware flips) seeds a CPU
    generator with ``child_seed(seed, *key)``: its ``manual_seed`` keeps 32 bits of that child,
    but the child hashes all 64 bits of ``seed``, so run seeds differing only above bit 32 are
    not aliased."""
    import torch

    seed = 0x1234_5678
    first = torch.rand(64, generator=torch_generator(seed, "error-aware", "fc1"))
    assert torch.equal(first, torch.rand(64, generator=torch_generator(seed, "error-aware", "fc1")))
    for other in (seed + (1 << 32), seed + (1 << 62), seed ^ (1 << 63), 2**64 - 1):
        drawn = torch.rand(64, generator=torch_generator(other, "error-aware", "fc1"))
        assert not torch.equal(first, drawn)
