"""Paired timing ratios for the benchmarks: a median with its interval, and verdicts from it.

A benchmark times the two sides of a ratio back to back (their order alternating from pair to
pair), so that each pair sees the same machine state; the ratio of one pair is one sample. The
median of the samples comes with a distribution-free 95 % interval (order statistics,
:func:`memsim.fit.median_interval`), which needs at least 6 pairs. An aim is met when the whole
interval lies on its side, missed when it lies wholly on the other, else unresolved by the run;
likewise a ratio is above or below 1 only when its interval is.

Not a benchmark itself: the scripts beside it import it (``python benchmarks/<name>.py`` puts
this folder on the path).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from memsim.fit import median_interval

#: Fewest pairs whose median has a 95 % interval (5 cover only 93.75 %).
MIN_PAIRS = 6
#: A single measured ratio meets or misses an aim only beyond this factor of it: in three runs
#: of ``benchmarks/bitflip.py --quick`` such ratios moved by up to 1.7x.
SINGLE_NOISE = 2.0


@dataclass(frozen=True)
class Paired:
    """The median of paired ratios, its 95 % interval (NaN with under ``MIN_PAIRS`` pairs), the
    interval's coverage, the range and the number of pairs."""

    median: float
    low: float
    high: float
    coverage: float
    smallest: float
    largest: float
    n: int

    @classmethod
    def of(cls, ratios: Sequence[float]) -> Paired:
        values = [r for r in ratios if not math.isnan(r)]
        if not values:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0)
        low, high, coverage = median_interval(values)
        return cls(
            statistics.median(values), low, high, coverage, min(values), max(values), len(values)
        )

    @property
    def resolved(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def text(self, digits: int = 3) -> str:
        """``median [low, high]`` (or the range, where there are too few pairs for an interval)."""
        f = f"{{:.{digits}f}}"
        if self.resolved:
            return f"{f.format(self.median)} [{f.format(self.low)}, {f.format(self.high)}]"
        return (
            f"{f.format(self.median)} (range {f.format(self.smallest)}-"
            f"{f.format(self.largest)}, {self.n} pairs: no 95 % interval)"
        )

    def at_most(self, aim: float) -> str:
        """Verdict on the aim ``ratio <= aim``: met, missed or unresolved."""
        if not self.resolved:
            return "unresolved"
        return "met" if self.high <= aim else "missed" if self.low > aim else "unresolved"

    def at_least(self, aim: float) -> str:
        """Verdict on the aim ``ratio >= aim``: met, missed or unresolved."""
        if not self.resolved:
            return "unresolved"
        return "met" if self.low >= aim else "missed" if self.high < aim else "unresolved"

    def against_one(self) -> str:
        """Whether the ratio is above or below 1, or unresolved by this run."""
        if not self.resolved:
            return "unresolved (no interval)"
        if self.low > 1:
            return "above 1"
        if self.high < 1:
            return "below 1"
        return "unresolved (1 lies in the interval: within this run's noise)"


def single_verdict(ratio: float, aim: float, noise: float, *, at_least: bool) -> str:
    """Verdict on one measured ratio against an aim, given the factor ``noise`` (> 1) by which
    such ratios were seen to move from run to run: met or missed only beyond that factor."""
    if math.isnan(ratio):
        return "unresolved"
    if not at_least:
        ratio, aim = 1 / ratio, 1 / aim
    if ratio >= aim * noise:
        return "met"
    if ratio < aim / noise:
        return "missed"
    return "unresolved"
