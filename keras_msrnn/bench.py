"""Training-step benchmark: plain stack vs multi-scale stack.

`keras-msrnn bench --cell convlstm --frame 64` builds the plain stack
(`scales=(1,) * layers`) and the MS-RNN stack (`(1, 2, 4, 4, 2, 1)`) at the
same size, trains each on random frames and reports the mean training-step
time after warm-up and the peak memory of a step, with the MS / plain ratios.

Each variant runs in a fresh worker process of the current backend. Memory:
- on CPU, the worker fixes glibc's mmap threshold so that freed activation
  buffers go back to the system; the step's memory is the peak resident set
  size (VmHWM, reset through /proc/self/clear_refs) over the resident size
  before the step (`step_memory_mb`). Allocators that keep freed memory
  (XLA's, on JAX) hide that, so the peak of the first step over the
  resident size before it is reported too (`first_step_memory_mb`; it also
  holds tracing and compilation), and the absolute process peak.
- on a GPU, the backend's own peak-allocation counter.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np


def _proc_status_megabytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


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
        dtype=args.dtype,
    )
    model.compile()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.frame, args.frame, args.channels)
    context = rng.random((args.batch, args.input_length) + shape[1:], dtype="float32")
    future = rng.random((args.batch, args.output_length) + shape[1:], dtype="float32")

    def step():
        model.train_on_batch((context, future), future)

    rss_before_first_step = _proc_status_megabytes("VmRSS")
    start = time.perf_counter()
    step()  # traces and compiles
    first_step = time.perf_counter() - start
    first_step_peak = _proc_status_megabytes("VmHWM")
    for _ in range(args.warmup - 1):
        step()

    gpu = device_memory.accelerator()
    rss_before = _proc_status_megabytes("VmRSS")
    peak_reset = _reset_peak_rss()
    if gpu:
        device_memory.reset_peak()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {
        "scales": list(scales),
        "params": model.count_params(),
        "first_step_s": round(first_step, 3),
        "step_s": round(float(np.mean(times)), 4),
        "step_s_std": round(float(np.std(times)), 4),
        "peak_rss_mb": round(max(first_step_peak, _proc_status_megabytes("VmHWM")), 1),
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
    return result


def _worker_command(args, variant):
    command = [sys.executable, "-m", "keras_msrnn.bench", "--worker", variant]
    for name in ("cell", "frame", "channels", "filters", "layers", "kernel_size", "input_length",
                 "output_length", "batch", "steps", "warmup", "dtype"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return command


def _run_worker(args, variant):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        _worker_command(args, variant), env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark worker ({variant}) failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def benchmark(args):
    """Runs the plain and MS workers and returns the full report."""
    import keras

    report = {
        "backend": keras.config.backend(),
        "cell": args.cell,
        "frame": [args.frame, args.frame, args.channels],
        "filters": args.filters,
        "layers": args.layers,
        "kernel_size": args.kernel_size,
        "input_length": args.input_length,
        "output_length": args.output_length,
        "batch": args.batch,
        "dtype": args.dtype,
        "measured_steps": args.steps,
    }
    for variant in ("plain", "ms"):
        report[variant] = _run_worker(args, variant)
    ratios = {"step_time": report["ms"]["step_s"] / report["plain"]["step_s"]}
    for key in ("step_memory_mb", "first_step_memory_mb", "peak_rss_mb", "device_peak_mb"):
        if key in report["ms"] and report["plain"].get(key):
            ratios[key.replace("_mb", "")] = report["ms"][key] / report["plain"][key]
    report["ms_over_plain"] = {k: round(v, 3) for k, v in ratios.items()}
    return report


def format_report(report):
    columns = ("step_s", "first_step_s", "step_memory_mb", "first_step_memory_mb", "peak_rss_mb", "device_peak_mb")
    present = [c for c in columns if c in report["plain"]]
    lines = [
        f"{report['backend']} | {report['cell']} | frame {report['frame']} | "
        f"{report['layers']} x {report['filters']}, k{report['kernel_size']} | "
        f"{report['input_length']} -> {report['output_length']} | batch {report['batch']}",
        "variant  " + "  ".join(f"{c:>15}" for c in present),
    ]
    for variant in ("plain", "ms"):
        lines.append(f"{variant:<8} " + "  ".join(f"{report[variant][c]:>15}" for c in present))
    lines.append("MS/plain " + ", ".join(f"{k} {v:.3f}" for k, v in report["ms_over_plain"].items()))
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--cell", default="convlstm")
    parser.add_argument("--frame", type=int, default=64, help="frame height and width")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--layers", type=int, default=6, choices=[6], help="MS-RNN's pyramid has 6 layers")
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--input-length", type=int, default=10)
    parser.add_argument("--output-length", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="measured training steps")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured steps, the first compiles")
    parser.add_argument("--dtype", default="float32", help="dtype policy, e.g. mixed_bfloat16")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m keras_msrnn.bench")
    add_arguments(parser)
    parser.add_argument("--worker", choices=["plain", "ms"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        from keras_msrnn.models.ms_stack import MSRNN_SCALES

        scales = (1,) * args.layers if args.worker == "plain" else MSRNN_SCALES
        print(json.dumps(run_variant(args, scales)))
        return 0
    return run(args)


def run(args):
    if args.warmup < 1 or args.steps < 1:
        raise SystemExit("keras-msrnn bench: --warmup and --steps must be at least 1")
    report = benchmark(args)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
