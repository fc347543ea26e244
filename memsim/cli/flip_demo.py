"""``memsim flip-demo``: a small, honest demonstration of the bit-flip operator.

It builds one seeded random tensor, flips it once with :func:`memsim.noise.flip`, and prints per
bit field how many 0→1 and 1→0 flips happened against the Binomial expectation. It runs no
network and no memory model; it only shows the noise operator at work.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from memsim.cli import options

if TYPE_CHECKING:
    import numpy as np
    import torch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``flip-demo`` verb."""
    p = subparsers.add_parser(
        "flip-demo",
        help="demonstrate the bit-flip operator on a random tensor (flip counts vs. expectation)",
        description=__doc__.splitlines()[0] + " No network or memory model is run.",
        parents=[options.common(), options.noise(default_p=1e-3), options.seed()],
    )
    p.add_argument("--format", default="float32", help="storage format (default float32)")
    p.add_argument(
        "--elements",
        type=options.bounded_int(1, 100_000_000),
        default=1_000_000,
        help="tensor size (default 1e6)",
    )
    p.set_defaults(func=run)


def demo_tensor(fmt_name: str, n: int, seed: int) -> torch.Tensor:
    """``n`` seeded random values stored in ``fmt_name`` (normal values for floats, raw words otherwise)."""
    import torch

    from memsim.formats import get_format
    from memsim.noise.bits import int_view_dtype

    fmt = get_format(fmt_name)
    if fmt.torch_dtype is None:
        raise ValueError(f"--format: '{fmt.name}' has no tensor storage type to demonstrate on.")
    gen = torch.Generator().manual_seed(seed)
    if fmt.is_float:
        return torch.randn(n, generator=gen, dtype=torch.float64).to(fmt.torch_dtype)
    raw = torch.randint(0, 256, (n * fmt.width // 8,), dtype=torch.uint8, generator=gen)
    return raw.view(int_view_dtype(fmt)).view(fmt.torch_dtype)


def field_table(
    x: torch.Tensor, y: torch.Tensor, p01: float, p10: float, mask: np.ndarray
) -> list[dict]:
    """Per field: eligible 0s and 1s, observed flips per direction, expected flips and 99.9% range."""
    from scipy import stats

    from memsim.formats import get_format
    from memsim.noise.bits import uint_words, unpack_bits

    fmt = get_format(x.dtype)

    def bits(t: torch.Tensor) -> np.ndarray:
        return unpack_bits(uint_words(t, fmt)).astype(bool)

    before, after = bits(x), bits(y)
    changed = before != after
    rows = []
    for field, positions in fmt.fields.items():
        cols = [pos for pos in positions if mask[pos]]
        for direction, stored, p in (("0→1", False, p01), ("1→0", True, p10)):
            eligible = int((before[:, cols] == stored).sum()) if cols else 0
            observed = int((changed[:, cols] & (before[:, cols] == stored)).sum()) if cols else 0
            lo, hi = stats.binom.interval(0.999, eligible, p) if eligible else (0, 0)
            rows.append(dict(field=field, direction=direction, eligible=eligible, observed=observed,
                             expected=eligible * p, lo=int(lo), hi=int(hi)))  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> int:
    import torch

    from memsim.formats import get_format, resolve_bits
    from memsim.noise.api import flip

    p10 = args.p if args.p10 is None else args.p10
    x = demo_tensor(args.format, args.elements, args.seed)
    fmt = get_format(x.dtype)
    mask = resolve_bits(fmt, args.bits)
    flip(x[:1], args.p, p10, bits=args.bits, engine=args.engine, seed=0)  # load the kernels first
    t0 = time.perf_counter()
    y = flip(x, args.p, p10, bits=args.bits, engine=args.engine, seed=args.seed)
    elapsed_ms = (time.perf_counter() - t0) * 1e3
    print(
        "memsim flip-demo: a demonstration of the bit-flip operator only (no network, no memory model)."
    )
    print(f"{args.elements} random {fmt.name} values, p={args.p:g}, p10={p10:g}, bits={args.bits or 'all'}, "
          f"engine={args.engine}, seed={args.seed}; flip took {elapsed_ms:.2f} ms")  # fmt: skip
    print(
        f"{'field':<10} {'dir':<4} {'eligible':>12} {'flipped':>10} {'expected':>12}  99.9% range"
    )
    for r in field_table(x, y, args.p, p10, mask):
        ok = "" if r["lo"] <= r["observed"] <= r["hi"] else "  (outside)"
        print(f"{r['field']:<10} {r['direction']:<4} {r['eligible']:>12} {r['observed']:>10} "
              f"{r['expected']:>12.1f}  [{r['lo']}, {r['hi']}]{ok}")  # fmt: skip
    if fmt.is_float:
        print(
            f"non-finite values: {int((~torch.isfinite(x)).sum())} before, {int((~torch.isfinite(y)).sum())} after"
        )
    return 0
