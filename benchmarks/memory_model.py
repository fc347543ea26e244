"""Benchmark of the SimPy memory model: one VGG-16 (vgg_D) inference under the default policies.

Prints, per policy, the SimPy events, events per second and wall time of
``memsim.timing.simulate`` for one inference with inference reads (every layer reads its
input activations and its weights, ``memsim.timing.reads``), the same for the write-only
model measured in the same run (``reads=None``), and two ratios against it: with reads /
write-only, and the wall (and CPU) time for a trace twice as long (``Trace.repeated(2)``, with
reads) over the single trace: the model's cost must grow linearly, ratio ≈ 2.

Timings are paired repeats (``benchmarks/_paired.py``): in each repeat the three simulations of
a policy run back to back, their order (and the policies') reversed every other repeat, and a
ratio is the median of the per-repeat ratios with a distribution-free 95 % interval (6 repeats
at least; fewer give the range and no interval). Times are medians over the repeats; events
per second are events over CPU seconds of this process, also a median with its interval.

Targets: at least 100k SimPy events/s (judged on the median's interval over all the policies
run), all default policies with reads in under 10 s in total (judged only with ``--policies
all``): met when the interval lies on the aim's side, missed when wholly on the other, else
unresolved. The default runs three policies (the baseline, and the smallest and largest writes)
to keep the run under a minute; ``--policies all`` runs every default policy (about 20 s per
repeat on the 2-core development machine, so some 2-3 minutes).

Threads: SimPy runs in this one Python thread; ``--threads`` (default 1) fixes torch's and the
Numba kernels' threads for the tracing and planning (``memsim.experiment.executor.set_threads``).

The trace comes from ``memsim.trace.capture.trace_model`` on ``workloads.get_workload("vgg_D")``
(untrained weights, random CIFAR-sized inputs: sizes and operation counts are what the memory
model needs). If that stack is unavailable, the records are synthesised from the VGG cfg
arithmetic. If no policies are registered, a hand-made single-pulse baseline plan is used.

Run: ``python benchmarks/memory_model.py [--policies all] [--repeats 6] [--threads 1]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from _paired import MIN_PAIRS, Paired

from memsim.timing import MemoryParams, WritePlan, load_memory_params, simulate
from memsim.timing.reads import read_plans
from memsim.trace.records import Trace, WriteRecord, make_trace

VGG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def synthetic_vgg_trace(cfg=VGG_D, fmt: str = "float32", bits: int = 32) -> Trace:
    """VGG-with-BN write records from the cfg arithmetic (32×32 inputs, ones fraction 0.5)."""
    ones = (0.5,) * bits

    def rec(name, mtype, shape, ops, role="activation"):
        numel = 1
        for d in shape:
            numel *= d
        return WriteRecord(0, name, mtype, role, shape, numel, fmt, bits, ops, ones, 0.0)

    records = [rec("input", "Input", (3, 32, 32), 0, role="input")]
    c, hw, i = 3, 32, 0
    for entry in cfg:
        if entry == "M":
            records.append(rec(f"features.{i}", "MaxPool2d", (c, hw // 2, hw // 2), c * hw * hw))
            hw //= 2
            i += 1
            continue
        out = int(entry)
        size = out * hw * hw
        records.append(rec(f"features.{i}", "Conv2d", (out, hw, hw), size * c * 9))
        records.append(rec(f"features.{i + 1}", "BatchNorm2d", (out, hw, hw), size))
        records.append(rec(f"features.{i + 2}", "ReLU", (out, hw, hw), size))
        c, i = out, i + 3
    records.append(rec("classifier", "Linear", (10,), 512 * 10))
    return make_trace("vgg_D", fmt, records, meta={"synthetic": True})


def vgg_trace() -> tuple[Trace, str]:
    """The traced VGG-16 if the workload and tracing stack are present, else the synthetic one."""
    try:
        import torch

        from memsim.trace.capture import trace_model
        from workloads import get_workload

        model = get_workload("vgg_D").build_model().eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        return trace_model(
            model, x, "float32", workload_name="vgg_D", include_weights=True
        ), "traced with weights (memsim.trace.capture)"
    except Exception as exc:  # noqa: BLE001 - a benchmark falls back rather than fails
        return (
            synthetic_vgg_trace(),
            f"synthetic (tracing unavailable: {type(exc).__name__}: {exc})",
        )


def baseline_plans(trace: Trace, unit_bits: int = 64, e_pulse_pj: float = 0.6) -> list[WritePlan]:
    """Single-pulse plans for every activation: each bit gets one SET or RESET pulse (row 12)."""
    plans = []
    for r in trace.records:
        if r.role not in ("activation", "input"):
            continue
        ones = sum(r.ones_fraction) if r.ones_fraction else r.bits / 2
        plans.append(
            WritePlan(
                r.name,
                r.index,
                rram_bits=r.total_bits,
                unit_bits=unit_bits,
                t_pulse_ns=10.0,
                energy_pj={
                    "rram_set": r.numel * ones * e_pulse_pj,
                    "rram_reset": r.numel * (r.bits - ones) * e_pulse_pj,
                },
            )
        )
    return plans


def load_bundle():
    """The default device bundle (read energies and times of the weights)."""
    from memsim.device import load_device

    return load_device()


#: The policies of the default run: the baseline and the smallest (int8) and largest (float64)
#: writes; their three simulations took about 6 s per repeat on the shared 2-core development
#: machine, so the default 6 repeats stay under a minute with the tracing.
DEFAULT_POLICIES = ("baseline", "int8", "float64")
#: The aims: events per second (CPU) at least, and every default policy with reads at most (s).
EVENTS_AIM, TOTAL_AIM_S = 100_000.0, 10.0


def policy_planners() -> dict[str, object]:
    """name → function(trace) -> plans, for every default policy (or the hand-made baseline)."""
    try:
        import policies
        from memsim.device import load_device
        from memsim.timing import plan_trace

        if hasattr(policies, "default_policies"):
            chosen = policies.default_policies()
        else:
            chosen = {name: policies.get_policy(name) for name in policies.POLICIES.names()}
        device = load_device()
    except Exception as exc:  # noqa: BLE001
        print(f"policies unavailable ({type(exc).__name__}: {exc}); using a hand-made baseline")
        return {"baseline (hand-made)": baseline_plans}
    if not chosen:
        return {"baseline (hand-made)": baseline_plans}
    return {
        name: (lambda tr, policy=policy: plan_trace(policy, tr, device))
        for name, policy in chosen.items()
    }


def select(planners: dict[str, object], asked: str | None) -> dict[str, object]:
    """The policies to run: ``all``, a comma-separated list, or (``None``) the default few."""
    if asked == "all":
        return planners
    if asked is None:
        chosen = {n: planners[n] for n in DEFAULT_POLICIES if n in planners}
        return chosen or dict(list(planners.items())[:3])
    names = [n for n in asked.split(",") if n]
    unknown = [n for n in names if n not in planners]
    if unknown:
        raise SystemExit(
            f"--policies: unknown policy {unknown[0]!r} (one of: {', '.join(planners)}, all)"
        )
    return {n: planners[n] for n in names}


def run_one(plans, trace: Trace, params: MemoryParams, seed: int, reads=None):
    """(wall s, CPU s of this process, SimPy events) of one simulation; ``reads=None`` is the
    write-only model."""
    w0, c0 = time.perf_counter(), time.process_time()
    res = simulate(plans, trace, params, seed=seed, reads=reads)
    return time.perf_counter() - w0, time.process_time() - c0, res.events


#: The three simulations of a policy in one repeat: with reads, write-only, doubled trace.
KINDS = ("reads", "write_only", "double")


def against_two(ratios: list[float]) -> str:
    """Whether doubling the trace costs more or less than twice as much, or unresolved."""
    verdict = Paired.of([r / 2 for r in ratios]).against_one()
    return (
        verdict.replace("above 1", "above 2 (super-linear)")
        .replace("below 1", "below 2 (sub-linear)")
        .replace("1 lies in", "2 lies in")
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="default", help="memory preset or TOML path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeats",
        type=int,
        default=MIN_PAIRS,
        help=f"paired repeats ({MIN_PAIRS} or more give 95 %% intervals)",
    )
    ap.add_argument(
        "--policies",
        default=None,
        help=f"'all', or comma-separated names (default: {','.join(DEFAULT_POLICIES)})",
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch and Numba threads (fixed; default 1)"
    )
    ap.add_argument("--burst-units", type=int, default=None, help="override burst_units")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    try:
        from memsim.experiment.executor import set_threads

        set_threads(args.threads)
        threads = f"{args.threads} torch and Numba threads (tracing, planning)"
    except ImportError as exc:
        threads = f"threads not set ({exc})"
    overrides = {} if args.burst_units is None else {"burst_units": args.burst_units}
    params = load_memory_params(args.params, **overrides)
    trace, origin = vgg_trace()
    double = trace.repeated(2)
    device = load_bundle()
    weight_bits = sum(r.total_bits for r in trace.records if r.role in ("weight", "bias"))
    print(
        f"trace: {origin}; {len(trace)} records, {trace.written_bits / 1e6:.2f} Mbit written,"
        f" {weight_bits / 1e6:.2f} Mbit of weights read per inference"
    )
    print(f"params: {params}")
    registered = policy_planners()
    chosen = select(registered, args.policies)
    print(
        f"{len(chosen)} of {len(registered)} default policies, {args.repeats} paired repeats; "
        f"SimPy in one Python thread, {threads}"
    )

    cases = {}
    plan_s = 0.0
    for name, planner in chosen.items():
        try:
            t0 = time.perf_counter()
            plans = planner(trace)
            reads = read_plans(trace, plans, device, params)
            plan_s += time.perf_counter() - t0
            plans2 = planner(double)
            reads2 = read_plans(double, plans2, device, params)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other policies
            print(f"{name:<24} plan failed: {type(exc).__name__}: {exc}")
            continue
        cases[name] = {
            "reads": (plans, trace, reads),
            "write_only": (plans, trace, None),
            "double": (plans2, double, reads2),
            "units": sum(p.n_units + p.n_sram_units for p in plans),
            "read_units": sum(r.units for r in reads),
        }
    if not cases:
        print("no policy could be planned: nothing to time")
        return
    first = next(iter(cases.values()))
    run_one(*first["reads"][:2], params, args.seed, first["reads"][2])  # warm-up

    # wall[name, kind][r], cpu[name, kind][r]: repeat r; events[name, kind] (seeded: fixed).
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    events: dict[tuple[str, str], int] = {}
    names = list(cases)
    for r in range(args.repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                plans, tr, reads = cases[name][kind]
                w, c, ev = run_one(plans, tr, params, args.seed, reads)
                wall.setdefault((name, kind), []).append(w)
                cpu.setdefault((name, kind), []).append(c)
                events[name, kind] = ev

    med = statistics.median
    print(
        f"\nfigures: medians over the repeats; events/s (k, CPU): median [95 % interval]"
        f"\n{'policy':<22} {'w units':>8} {'r units':>8} {'events':>7} {'wall_s':>7}"
        f" {'cpu_s':>6} {'k events/s':>24} | {'wo evts':>7} {'wo wall':>7} {'wo k ev/s':>24}"
    )
    for name in names:
        rate, wo_rate = (
            Paired.of([events[name, k] / c / 1e3 for c in cpu[name, k]]).text(0)
            for k in ("reads", "write_only")
        )
        print(
            f"{name:<22} {cases[name]['units']:>8} {cases[name]['read_units']:>8}"
            f" {events[name, 'reads']:>7} {med(wall[name, 'reads']):>7.3f}"
            f" {med(cpu[name, 'reads']):>6.3f} {rate:>24} | {events[name, 'write_only']:>7}"
            f" {med(wall[name, 'write_only']):>7.3f} {wo_rate:>24}"
        )

    def paired(num: list[float], den: list[float]) -> Paired:
        return Paired.of([n / d for n, d in zip(num, den)])

    print(
        "\nratios paired within each repeat: median [95 % interval]; r/wo: with reads over "
        "write-only (wall); x2: doubled trace over the single one (linear: 2)"
        f"\n{'policy':<22} {'r/wo wall':>22} {'x2 wall':>22} {'x2 cpu':>22}"
    )
    for name in names:
        cells = (
            paired(wall[name, "reads"], wall[name, "write_only"]),
            paired(wall[name, "double"], wall[name, "reads"]),
            paired(cpu[name, "double"], cpu[name, "reads"]),
        )
        print(f"{name:<22}" + "".join(f" {c.text(2):>22}" for c in cells))

    # Totals over the policies, per repeat: each repeat's sum is one sample.
    def total(series: dict[tuple[str, str], list[float]], kind: str) -> list[float]:
        return [sum(series[n, kind][r] for n in names) for r in range(args.repeats)]

    t_reads, t_wo, t_double = (total(wall, k) for k in KINDS)
    c_reads, c_wo, c_double = (total(cpu, k) for k in KINDS)
    ev_reads = sum(events[n, "reads"] for n in names)
    ev_wo = sum(events[n, "write_only"] for n in names)
    wall_total = Paired.of(t_reads)
    rate_total = Paired.of([ev_reads / c for c in c_reads])
    wo_rate_total = Paired.of([ev_wo / c for c in c_wo])
    r_wo = paired(t_reads, t_wo)
    x2 = [d / s for d, s in zip(t_double, t_reads)]
    if len(names) == len(registered):
        on_total = f"aim < {TOTAL_AIM_S:g} s: {wall_total.at_most(TOTAL_AIM_S)}"
    else:
        on_total = f"aim < {TOTAL_AIM_S:g} s for all {len(registered)}: not judged (--policies all)"
    print(
        f"\ntotals over {len(names)} {'policy' if len(names) == 1 else 'policies'}, one inference each (per-repeat sums; "
        "median [95 % interval]):"
    )
    print(f"  simulate with reads (wall s): {wall_total.text(2)}; {on_total}")
    print(
        f"  events/s with reads (CPU): {rate_total.text(0)}; aim >= {EVENTS_AIM:,.0f}: "
        f"{rate_total.at_least(EVENTS_AIM)}"
    )
    print(f"  events/s write-only model, same run (CPU): {wo_rate_total.text(0)}")
    print(f"  with reads / write-only (wall): {r_wo.text(2)}: {r_wo.against_one()}")
    print(f"  doubled trace / single (wall): {Paired.of(x2).text(2)}: {against_two(x2)}")
    print(f"  planning (with reads, one pass, single measurement): {plan_s * 1e3:.0f} ms")
    if args.repeats < MIN_PAIRS:
        print(
            f"({args.repeats} repeats: ranges, no intervals, every verdict unresolved; "
            f"--repeats {MIN_PAIRS} or more gives 95 % intervals)"
        )


if __name__ == "__main__":
    main()
