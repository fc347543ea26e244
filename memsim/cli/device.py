"""``memsim device [CONFIG] [--plot PATH]``: the table of programming conditions, and a figure.

Prints every shipped programming condition (nominal to low-energy) with its bit-flip
probabilities, pulse energies and times and the 2T2R error with the same devices, plus the
SRAM/ECC costs of the chosen bundle; ``--plot`` saves the resistance distributions of the
chosen condition (``plot.plot_cell``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from memsim.cli import options

if TYPE_CHECKING:  # memsim.device loads scipy: imported when the verb runs, not for --help
    from memsim.device.conditions import ProgrammingCondition
    from memsim.device.params import DeviceParams

#: The device bundle shown by default (``memsim.device.params.DEFAULT_DEVICE``).
DEFAULT_DEVICE = "default"

_COLUMNS = (
    ("condition", "{:<12}"),
    ("E_SET pJ", "{:>9.3g}"),
    ("E_RESET pJ", "{:>10.3g}"),
    ("t_pulse ns", "{:>10.3g}"),
    ("t_read ns", "{:>9.3g}"),
    ("R_L kΩ", "{:>7.3g}"),
    ("R_H kΩ", "{:>7.3g}"),
    ("σ_L", "{:>6.3g}"),
    ("σ_H", "{:>6.3g}"),
    ("R_th kΩ", "{:>8.3g}"),
    ("p01", "{:>9.2e}"),
    ("p10", "{:>9.2e}"),
    ("p_bf", "{:>9.2e}"),
    ("p_2T2R", "{:>9.2e}"),
)


def _row(c: ProgrammingCondition, sigma_sa_ln: float) -> list[object]:
    cell = c.cell
    return [
        c.name,
        c.e_set_pj,
        c.e_reset_pj,
        c.t_pulse_ns,
        c.t_read_ns,
        cell.lrs.median_ohm / 1e3,
        cell.hrs.median_ohm / 1e3,
        cell.lrs.sigma_ln,
        cell.hrs.sigma_ln,
        cell.read_threshold_ohm / 1e3,
        c.p01,
        c.p10,
        c.p_bf,
        c.p_2t2r(sigma_sa_ln),
    ]


def format_table(
    conditions: list[ProgrammingCondition], selected: str = "", sigma_sa_ln: float = 0.0
) -> str:
    """The conditions as a fixed-width text table; ``selected`` is marked with '*'."""
    widths = [len(fmt.format(*([0] if "g" in fmt or "e" in fmt else [""]))) for _, fmt in _COLUMNS]
    header = "  " + " ".join(
        name.rjust(w) if i else name.ljust(w)
        for i, ((name, _), w) in enumerate(zip(_COLUMNS, widths))
    )
    lines = [header]
    for c in conditions:
        cells = " ".join(fmt.format(v) for (_, fmt), v in zip(_COLUMNS, _row(c, sigma_sa_ln)))
        lines.append(("* " if c.name == selected else "  ") + cells)
    return "\n".join(lines)


def describe(device: DeviceParams) -> str:
    """Table of all shipped conditions plus the bundle's other costs."""
    from memsim.device.conditions import load_conditions

    conditions = load_conditions()
    if device.condition.name not in {c.name for c in conditions}:
        conditions.append(device.condition)
    s, e, r = device.sram, device.secded, device.read
    return "\n".join(
        [
            f"device '{device.name}': {device.description}",
            "programming conditions (single pulse; logic 1 = LRS, 0 = HRS; * = selected):",
            format_table(conditions, device.condition.name, r.sigma_sa_ln),
            f"read energy {device.condition.e_read_pj_per_bit:g} pJ/bit; 2T2R = two devices per bit, "
            f"sense-amplifier offset σ_SA = {r.sigma_sa_ln:g} ln-units",
            f"SRAM: read {s.e_read_pj_per_bit:g} / write {s.e_write_pj_per_bit:g} pJ/bit, access {s.t_access_ns:g} ns",
            f"SECDED({e.codeword_bits},{e.data_bits}): +{e.overhead_fraction:.1%} cells, encode "
            f"{e.e_encode_pj:g} pJ / {e.t_encode_ns:g} ns, decode {e.e_decode_pj:g} pJ / {e.t_decode_ns:g} ns, "
            f"word failure at p_bf: {e.word_failure(device.p_bf):.2e}",
            f"verify: margin {r.verify_margin_ln:g} ln-units, misread probability {r.verify_misread_prob:g}",
        ]
    )


def _plot_path(text: str) -> Path:
    """``--plot``'s file: writable (missing folders are made) and of a format matplotlib
    saves, or a one-line ``ValueError`` naming it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from memsim.paths import check_output_file

    kinds = Figure().canvas.get_supported_filetypes()
    if Path(text).suffix.lstrip(".").lower() not in kinds:  # before any folder is made
        raise ValueError(
            f"--plot {text}: matplotlib saves {', '.join(sorted(kinds))}; name a file with one "
            "of these extensions."
        )
    try:
        return check_output_file(text, missing_parent="create")
    except ValueError as exc:
        raise ValueError(f"--plot: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from memsim.device.params import load_device, names_condition

    if args.condition not in (None, args.config) and names_condition(args.config):
        raise ValueError(
            f"{args.config} is a programming condition and --condition {args.condition} names "
            "another: give one (--condition replaces a device bundle's condition)."
        )
    device = load_device(args.config, condition=args.condition)
    path = _plot_path(args.plot) if args.plot else None  # refused before anything is printed
    print(describe(device))
    if path is not None:
        import matplotlib.pyplot as plt

        from memsim.device.plot import plot_cell

        fig = plot_cell(device.condition.cell, title=f"{device.condition.name}:")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        print(f"saved {path}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``device`` verb."""
    parser = subparsers.add_parser(
        "device",
        help="show the RRAM programming conditions: bit-flip probabilities, energies, times",
        description="Print the programming conditions (bit-flip probabilities, energies, times) "
        "and optionally plot the resistance distributions of the chosen one.",
        parents=[options.common()],
    )
    parser.add_argument(
        "config",
        nargs="?",
        default=DEFAULT_DEVICE,
        help="device bundle or programming condition: a preset name or a TOML path (default: %(default)s)",
    )
    parser.add_argument(
        "--condition", default=None, help="replace the bundle's programming condition"
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        default=None,
        help="save the resistance distributions (PNG/PDF/SVG)",
    )
    parser.set_defaults(func=run)
    return parser
