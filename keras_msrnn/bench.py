"""Training-step benchmark: plain stack vs multi-scale stack.

`keras-msrnn bench --cell convlstm --frame 64` builds the plain stack
(`scales=(1,) * layers`) and the MS-RNN stack (`(1, 2, 4, 4, 2, 1)`) at the
same size, trains each on random frames and reports the mean training-step
time after warm-up and the peak memory of a step, with the MS / plain ratios.

`--cell all` (or a comma-separated list) measures several cells in turn.
`--output FILE` appends each report to FILE as one JSON line and skips the
cells FILE already holds for the same backend and settings, so a long run
that was stopped resumes where it was. `--table FILE [FILE ...]` measures
nothing and prints the reports of such files as one Markdown table.

Each variant runs in a fresh worker process of the current backend. Memory:
- on CPU, the worker fixes glibc's mmap threshold so that freed activation
  buffers go back to the system; the step's memory is the peak resident set
  size (VmHWM, reset through /proc/self/clear_refs) over the resident size
  before the step (`step_memory_mb`). Allocators that keep freed memory
  (XLA's, on JAX) hide that, so the peak of the first step over the
  resident size before it is reported too (`first_step_memory_mb`; it also
  holds tracing and compilation), and the absolute process peak. On JAX the
  size XLA's buffer assignment gives the compiled step's intermediates is
  reported instead (`xla_step_temp_mb`), an exact figure for the activations.
- on a GPU, the backend's own peak-allocation counter.
"""

import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np


def run_variant(args, scales):
    """Measures one stack in this process; returns a dict of results."""
    import keras

    from keras_msrnn import MSStack
    from keras_msrnn.backend import device_memory

    keras.utils.set_random_seed(0)
    model = MSStack(
        cell=args.cell,
        filters=args.filters,
        scales=scales,
        kernel_size=args.kernel_size,
        input_length=args.input_length,
        output_length=args.output_length,
        patch_size=args.patch_size,
        dtype=args.dtype,
        unroll=UNROLL_CHOICES[args.unroll],
    )
    rng = np.random.default_rng(0)
    shape = (args.batch, args.frame, args.frame, args.channels)
    context = rng.random((args.batch, args.input_length) + shape[1:], dtype="float32")
    future = rng.random((args.batch, args.output_length) + shape[1:], dtype="float32")
    # As `keras-msrnn train` does: variables exist before the step is traced.
    model.build(context.shape)
    model.compile()

    def step():
        model.train_on_batch((context, future), future)

    rss_before_first_step = device_memory.process_megabytes("VmRSS")
    start = time.perf_counter()
    step()  # traces and compiles
    first_step = time.perf_counter() - start
    first_step_peak = device_memory.process_megabytes("VmHWM")
    for _ in range(args.warmup - 1):
        step()

    gpu = device_memory.accelerator()
    rss_before = device_memory.process_megabytes("VmRSS")
    peak_reset = device_memory.reset_peak_resident_size()
    if gpu:
        device_memory.reset_peak()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {
        "scales": list(scales),
        "unrolled": model.unroll,
        "params": model.count_params(),
        "first_step_s": round(first_step, 3),
        "step_s": round(float(np.mean(times)), 4),
        "step_s_std": round(float(np.std(times)), 4),
        "peak_rss_mb": round(max(first_step_peak, device_memory.process_megabytes("VmHWM")), 1),
        # Activations (and, on the first step, tracing) over what the model,
        # its optimizer and the framework held before: valid also for
        # allocators that keep freed memory, as XLA's does.
        "first_step_memory_mb": round(first_step_peak - rss_before_first_step, 1),
    }
    if peak_reset:
        result["step_memory_mb"] = round(result["peak_rss_mb"] - rss_before, 1)
    if gpu:
        result["device"] = gpu
        result["device_peak_mb"] = round(device_memory.peak_megabytes(), 1)
    compiled_step = device_memory.compiled_step_megabytes(model, (context, future), future)
    if compiled_step is not None:
        result["xla_step_temp_mb"] = round(compiled_step, 1)
    return result


def _worker_command(args, cell, variant):
    command = [sys.executable, "-m", "keras_msrnn.bench", "--worker", variant, "--cell", cell]
    for name in (
        "frame",
        "channels",
        "filters",
        "layers",
        "kernel_size",
        "input_length",
        "output_length",
        "patch_size",
        "batch",
        "steps",
        "warmup",
        "dtype",
        "unroll",
    ):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return command


WORKER_ERROR = "keras-msrnn bench worker error: "
UNROLL_CHOICES = {"true": True, "false": False}


def report_worker_error(error):
    """Prints the traceback, then the one line `worker_failure` finds."""
    traceback.print_exc()
    message = " ".join(str(error).splitlines())
    print(f"{WORKER_ERROR}{type(error).__name__}: {message}", file=sys.stderr)


def worker_failure(stderr, returncode):
    """The worker's own error line; backends may print notes after a traceback."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    tagged = [line[len(WORKER_ERROR) :] for line in lines if line.startswith(WORKER_ERROR)]
    if tagged:
        return tagged[-1]
    return lines[-1] if lines else f"exit status {returncode}, no message"


def _run_worker(args, cell, variant):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        _worker_command(args, cell, variant), env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        cause = worker_failure(completed.stderr, completed.returncode)
        raise RuntimeError(f"benchmark worker ({cell}, {variant}) failed: {cause}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _planned_report(args, cell):
    import keras

    report = {
        "backend": keras.config.backend(),
        "cell": cell,
        "frame": [args.frame, args.frame, args.channels],
        "filters": args.filters,
        "layers": args.layers,
        "kernel_size": args.kernel_size,
        "input_length": args.input_length,
        "output_length": args.output_length,
        "patch_size": args.patch_size,
        "batch": args.batch,
        "dtype": args.dtype,
        "measured_steps": args.steps,
    }
    if args.unroll != "true":  # reports from before the option unrolled
        report["unroll"] = args.unroll
    return report


def benchmark(args, cell):
    """Runs the plain and MS workers of one cell and returns the full report."""
    report = _planned_report(args, cell)
    for variant in ("plain", "ms"):
        report[variant] = _run_worker(args, cell, variant)
    ratios = {"step_time": report["ms"]["step_s"] / report["plain"]["step_s"]}
    for key in (
        "step_memory_mb",
        "xla_step_temp_mb",
        "first_step_memory_mb",
        "peak_rss_mb",
        "device_peak_mb",
    ):
        if key in report["ms"] and report["plain"].get(key):
            ratios[key.replace("_mb", "")] = report["ms"][key] / report["plain"][key]
    report["ms_over_plain"] = {k: round(v, 3) for k, v in ratios.items()}
    return report


def memory_measure(report):
    """Picks the memory figure that shows the activations of a step.

    On an accelerator that is the backend's peak counter. On JAX's CPU, whose
    allocator keeps its buffers for good, it is XLA's buffer assignment for
    the compiled step. Elsewhere on CPU the workers make glibc hand freed
    buffers back, so the peak of a steady step over the resident size before
    it shows them, where the kernel lets the peak be reset. Reports without
    either fall back to the first step's growth (tracing and compilation
    included).
    """
    plain = report["plain"]
    if "device_peak_mb" in plain:
        return "device_peak_mb"
    if "xla_step_temp_mb" in plain:
        return "xla_step_temp_mb"
    if report["backend"] != "jax" and "step_memory_mb" in plain:
        return "step_memory_mb"
    return "first_step_memory_mb"


def _ratio(numerator, denominator):
    return f"{numerator / denominator:.3f}" if denominator > 0 else "n/a"


def _settings(report):
    settings = {
        key: value for key, value in report.items() if key not in ("plain", "ms", "ms_over_plain")
    }
    settings.setdefault("patch_size", 1)  # reports from before --patch-size existed
    return settings


def read_reports(path):
    """Reads the JSON-lines file that `--output` writes."""
    reports = []
    with open(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                report = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not a JSON report ({error})") from None
            if not {"backend", "cell", "plain", "ms"} <= set(report):
                raise ValueError(f"{path}, line {number}: not a bench report")
            reports.append(report)
    return reports


def markdown_table(reports):
    """One Markdown row per report: step times, memory and MS / plain ratios."""
    rows = [
        "| backend | cell | plain step | MS step | time MS/plain | plain memory | MS memory "
        "| memory MS/plain | peak RSS MS/plain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for report in reports:
        plain, ms = report["plain"], report["ms"]
        measure = memory_measure(report)
        rows.append(
            f"| {report['backend']} | {report['cell']} | {plain['step_s']:.2f} s | "
            f"{ms['step_s']:.2f} s "
            f"| **{_ratio(ms['step_s'], plain['step_s'])}** | {plain[measure]:.0f} MB | "
            f"{ms[measure]:.0f} MB "
            f"| **{_ratio(ms[measure], plain[measure])}** | "
            f"{_ratio(ms['peak_rss_mb'], plain['peak_rss_mb'])} |"
        )
    return "\n".join(rows)


def format_report(report):
    columns = (
        "step_s",
        "first_step_s",
        "step_memory_mb",
        "xla_step_temp_mb",
        "first_step_memory_mb",
        "peak_rss_mb",
        "device_peak_mb",
    )
    present = [c for c in columns if c in report["plain"]]
    lines = [
        f"{report['backend']} | {report['cell']} | frame {report['frame']} | "
        f"{report['layers']} x {report['filters']}, k{report['kernel_size']} | "
        f"{report['input_length']} -> {report['output_length']} | batch {report['batch']}",
        "variant  " + "  ".join(f"{c:>15}" for c in present),
    ]
    for variant in ("plain", "ms"):
        lines.append(f"{variant:<8} " + "  ".join(f"{report[variant][c]:>15}" for c in present))
    lines.append(
        "MS/plain " + ", ".join(f"{k} {v:.3f}" for k, v in report["ms_over_plain"].items())
    )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument(
        "--cell", default="convlstm", help="a cell name, a comma-separated list, or 'all'"
    )
    parser.add_argument("--frame", type=int, default=64, help="frame height and width")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument(
        "--layers", type=int, default=6, choices=[6], help="MS-RNN's pyramid has 6 layers"
    )
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--input-length", type=int, default=10)
    parser.add_argument("--output-length", type=int, default=10)
    parser.add_argument(
        "--patch-size", type=int, default=1, help="space-to-depth block size, as in presets"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="measured training steps")
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured steps, the first compiles"
    )
    parser.add_argument("--dtype", default="float32", help="dtype policy, e.g. mixed_bfloat16")
    parser.add_argument(
        "--unroll",
        choices=tuple(UNROLL_CHOICES),
        default="true",
        help="MSStack's `unroll`: the time loop unrolled (true) or one loop of the graph (false)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--output", help="append reports to this JSON-lines file; skip cells it holds"
    )
    parser.add_argument(
        "--table",
        nargs="+",
        metavar="FILE",
        help="print the reports in these files as a Markdown table",
    )


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_msrnn.bench")
    add_arguments(parser)
    parser.add_argument("--worker", choices=["plain", "ms"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from keras_msrnn.models.ms_stack import MSRNN_SCALES

        scales = (1,) * args.layers if args.worker == "plain" else MSRNN_SCALES
        try:
            report = run_variant(args, scales)
        except Exception as error:
            report_worker_error(error)
            return 1
        print(json.dumps(report))
        return 0
    return run(args)


# The paper's order, from the oldest model to the newest.
PAPER_ORDER = (
    "convlstm",
    "trajgru",
    "predrnn",
    "predrnn++",
    "mim",
    "motionrnn",
    "predrnn_v2",
    "preciplstm",
)


def _paper_position(cell):
    return PAPER_ORDER.index(cell) if cell in PAPER_ORDER else len(PAPER_ORDER)


def selected_cells(cell_argument):
    """Expands `--cell`: one name, a comma-separated list, or 'all'."""
    from keras_msrnn.cells.base import available_cells, get_cell_class

    if cell_argument == "all":
        return sorted(available_cells(), key=_paper_position)
    names = [name.strip().lower() for name in cell_argument.split(",") if name.strip()]
    for name in names:
        get_cell_class(name)  # raises ValueError naming the available cells
    if not names:
        raise ValueError("--cell names no cell")
    return names


def run(args):
    if args.table:
        print(markdown_table([report for path in args.table for report in read_reports(path)]))
        return 0
    if args.warmup < 1 or args.steps < 1:
        raise ValueError("--warmup and --steps must be at least 1")
    saved = read_reports(args.output) if args.output and os.path.exists(args.output) else []
    done = [_settings(report) for report in saved]
    for cell in selected_cells(args.cell):
        if _settings(_planned_report(args, cell)) in done:
            print(f"{cell}: already in {args.output}", file=sys.stderr)
            continue
        report = benchmark(args, cell)
        if args.output:
            with open(args.output, "a") as output:
                output.write(json.dumps(report) + "\n")
        print(json.dumps(report) if args.json else format_report(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
