"""Numba's on-disk cache of memsim's kernels goes stale with any kernel source, not just its own.

Kernels inline helpers from other files (``blocks._bit_slot`` into ``ladder.py``): Numba alone
would keep a compiled ``ladder.py`` kernel after ``blocks.py`` changed, and draw the old flips.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import memsim
from memsim import jit as jit_module
from memsim.noise import binomial, blocks, kernels, ladder

PACKAGE = Path(memsim.__file__).resolve().parent


def test_every_module_that_compiles_kernels_is_in_the_stamp():
    compiling = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"^from memsim\.jit import", path.read_text(), re.MULTILINE)
    }
    assert compiling  # the scan finds the kernel modules
    assert compiling | {"jit.py"} == set(jit_module.KERNEL_SOURCES)


def test_the_digest_changes_with_any_file(tmp_path):
    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for f in files:
        f.write_text("x = 1\n")
    before = jit_module.kernel_sources_digest(files)
    assert jit_module.kernel_sources_digest(files) == before
    files[1].write_text("x = 2\n")
    assert jit_module.kernel_sources_digest(files) != before


@pytest.mark.parametrize(
    "kernel",
    [blocks.block_flips_seeded, ladder.ladder_group, kernels.dense_flip, binomial.binomials],
)
def test_kernels_are_stamped_with_all_kernel_sources(kernel):
    locator = kernel._cache._impl._locator
    own, whole = locator.get_source_stamp()
    assert whole == jit_module.kernel_sources_digest(
        PACKAGE / name for name in jit_module.KERNEL_SOURCES
    )
    assert own == type(locator._inner).get_source_stamp(locator._inner)  # its file's, as before


def test_each_era_of_the_sources_has_cache_files_of_its_own():
    # Numba numbers data files 1, 2, ... under one name whatever the stamp: names that carry
    # the era keep a process running older code from overwriting a newer era's files.
    tag = jit_module.era_tag()
    assert re.fullmatch(r"[0-9a-f]{16}", tag)
    for kernel in (blocks.block_flips_seeded, ladder.ladder_group):
        assert f"-{tag}.py" in kernel._cache._impl._filename_base


def test_other_eras_cache_files_of_a_kernel_are_dropped(tmp_path):
    tag = jit_module.era_tag()
    keep = [
        tmp_path / f"blocks.k-10-{tag}.py311.nbi",
        tmp_path / f"blocks.k-10-{tag}.py311.1.nbc",
        tmp_path / "blocks.kk-10-0123456789abcdef.py311.nbi",  # another kernel
        tmp_path / "blocks.k-10-0123456789abcdef.py311.txt",  # not a cache file
    ]
    drop = [
        tmp_path / "blocks.k-10-0123456789abcdef.py311.nbi",
        tmp_path / "blocks.k-12-0123456789abcdef.py311.1.nbc",
        tmp_path / "blocks.k-10.py311.2.nbc",  # named before eras
    ]
    for path in keep + drop:
        path.write_bytes(b"")
    jit_module._drop_other_eras(tmp_path, "blocks.k")
    assert all(path.exists() for path in keep)
    assert not any(path.exists() for path in drop)


_NESTED = """
import sys

import numba
import numpy as np

from memsim.jit import jit


@jit(parallel=True)
def inner(x):
    for i in numba.prange(x.size):
        x[i] += 1


@jit
def outer(x):
    inner(x)
    return x.sum()


x = np.zeros(100)
print(inner(x) if sys.argv[1] == "inner" else outer(x))
"""


def test_a_cached_kernel_calling_a_parallel_one_runs_from_the_cache(tmp_path):
    """numba#8578: a cached kernel that calls a parallel kernel, compiled in a process that had
    loaded the parallel one from the cache, crashed every later process that loaded it (the
    threading layer was never started there). Importing memsim.jit starts it."""
    import subprocess
    import sys

    (tmp_path / "nested.py").write_text(_NESTED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    for step, which in enumerate(("inner", "outer", "outer", "outer")):
        run = subprocess.run(
            [sys.executable, str(tmp_path / "nested.py"), which],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, f"step {step} ({which}): {run.returncode} {run.stderr[-500:]}"
    cached = {p.name.split("-")[0] for p in (tmp_path / "__pycache__").glob("*.nbi")}
    assert cached == {"nested.inner", "nested.outer"}  # the last runs loaded both from the cache


_CONCURRENT_SAVES = """
import multiprocessing
import sys

from numba.core import caching

import memsim.jit  # its kernels' saves hold the folder's lock

FOLDER, BASE = sys.argv[1], "stress.kernel-1-" + memsim.jit.era_tag()


def save_all(worker):
    cache = caching.IndexDataCacheFile(FOLDER, BASE, "stamp")
    for i in range(40):
        cache.save((worker, i), ("data", worker, i))


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        pool.map(save_all, range(6))
    cache = caching.IndexDataCacheFile(FOLDER, BASE, "stamp")
    index = cache._load_index()
    wrong = sum(cache._load_data(name) != ("data", *key) for key, name in index.items())
    print(len(index), wrong)
"""


def test_concurrent_saves_of_kernels_keep_every_entry(tmp_path):
    """Six processes save 40 overloads each into one cache index at once, as a sweep's workers
    compiling on a fresh install do. Numba alone lost entries and mapped some to another
    overload's data (here 163 of 240 kept, 26 of them wrong; eight processes: 88-117 of 320
    kept, 49-56 wrong); with memsim's lock every entry is kept with its own data."""
    import subprocess
    import sys

    script = tmp_path / "saves.py"
    script.write_text(_CONCURRENT_SAVES)
    folder = tmp_path / "cache"
    folder.mkdir()
    run = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-1000:]
    kept, wrong = map(int, run.stdout.split())
    assert (kept, wrong) == (240, 0)


def test_a_kernel_save_waits_for_the_cache_folder_lock(tmp_path):
    import threading
    import time

    from numba.core import caching

    cache = caching.IndexDataCacheFile(str(tmp_path), f"m.k-1-{jit_module.era_tag()}", "stamp")
    saver = threading.Thread(target=cache.save, args=("key", "data"))
    with jit_module.cache_folder_lock(str(tmp_path)):
        saver.start()
        time.sleep(0.5)  # time enough for a save that does not wait
        assert cache._load_index() == {}
    saver.join(timeout=60)
    assert cache._load_index() == {"key": cache._data_name(1)}
    assert cache._load_data(cache._data_name(1)) == "data"
