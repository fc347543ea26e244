"""The picture a course lab starts from: two resistance distributions, a threshold, two errors.

A pure plotting function of a :class:`~memsim.device.RRAMCell`; ``memsim device --plot`` saves
it. Densities are drawn per unit of ln R over a log-R axis (the natural view of lognormals):
the LRS (logic 1) and HRS (logic 0) bells, the read threshold, and the two error areas,
``p10`` (LRS beyond R_th) and ``p01`` (HRS below it). A second panel repeats it with a
logarithmic density axis so that tails of 1e-6 are visible.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from memsim.device.cell import RRAMCell


def plot_cell(cell: RRAMCell, title: str = "", ax_pair=None):
    """Draw ``cell``'s distributions; return the matplotlib Figure.

    Parameters
    ----------
    cell : RRAMCell
    title : str
        Figure title (e.g. the condition name).
    ax_pair : pair of Axes, optional
        Draw into these (linear, log density) instead of a new figure.
    """
    import matplotlib.pyplot as plt

    if ax_pair is None:
        fig, ax_pair = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    else:
        fig = ax_pair[0].figure
    lrs, hrs, r_th = cell.lrs, cell.hrs, cell.read_threshold_ohm
    lo = lrs.mu_ln - 6 * lrs.sigma_ln
    hi = hrs.mu_ln + 6 * hrs.sigma_ln
    ln_r = np.linspace(lo, hi, 1200)
    r = np.exp(ln_r)
    dens_l = norm.pdf(ln_r, lrs.mu_ln, lrs.sigma_ln)
    dens_h = norm.pdf(ln_r, hrs.mu_ln, hrs.sigma_ln)
    above, below = r >= r_th, r <= r_th
    for ax, log_y in zip(ax_pair, (False, True)):
        ax.plot(
            r,
            dens_l,
            color="tab:blue",
            label=f"LRS (logic 1), median {lrs.median_ohm / 1e3:.3g} kΩ, σ_ln {lrs.sigma_ln:.3g}",
        )
        ax.plot(
            r,
            dens_h,
            color="tab:red",
            label=f"HRS (logic 0), median {hrs.median_ohm / 1e3:.3g} kΩ, σ_ln {hrs.sigma_ln:.3g}",
        )
        ax.fill_between(
            r[above], dens_l[above], color="tab:blue", alpha=0.35, label=f"p10 = {cell.p10:.2e}"
        )
        ax.fill_between(
            r[below], dens_h[below], color="tab:red", alpha=0.35, label=f"p01 = {cell.p01:.2e}"
        )
        ax.axvline(r_th, color="k", linestyle="--", label=f"R_th = {r_th / 1e3:.3g} kΩ")
        ax.set_xscale("log")
        ax.set_xlabel("resistance R (Ω)")
        ax.set_ylabel("density per unit ln R")
        if log_y:
            peak = max(dens_l.max(), dens_h.max())
            floor = max(min(cell.p01, cell.p10) * 1e-3, 1e-300)
            ax.set_yscale("log")
            ax.set_ylim(max(floor, peak * 1e-14), peak * 2)
            ax.set_title("log density: the tails that flip bits")
        else:
            ax.set_ylim(0, None)
            ax.set_title("linear density")
    ax_pair[0].legend(fontsize=7, loc="upper left")
    z = math.log(cell.ratio) / (lrs.sigma_ln + hrs.sigma_ln)
    fig.suptitle(f"{title}  p_bf = {cell.p_bf:.2e}  (ln ratio / σ sum = {z:.2f})".strip())
    return fig
