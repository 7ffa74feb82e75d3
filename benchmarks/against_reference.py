"""keras-msrnn's training step against the authors' PyTorch code, side by side.

    python -m benchmarks.against_reference --backends tensorflow,torch,jax --output ref.jsonl
    python -m benchmarks.against_reference --table ref.jsonl

Run from the repository root. For every cell, plain and multi-scale, one
training step of the same model with the same weights is timed twice:

- *reference*: `tests/torch_reference.py`, the PyTorch transcription of the
  authors' models (held to their goldens by `tests/test_parity_any_size.py`),
  trained as their code trains: forward over all `S - 1` frames, the MS-RNN
  loss (per-frame sums of squared and absolute errors), backward, an Adam step;
- *keras-msrnn*: the model that `keras_msrnn.convert.from_msrnn` builds from
  the reference's weights, `train_on_batch((context, future), future)` with
  the same objective (`reconstruction_loss_weight = (in - 1) / out`).

Each measurement runs in a fresh process: one warm-up step (it traces and
compiles on TensorFlow and JAX; its time is reported as `first_step_s`), then
the median of `--steps` steps. Both sides use the same number of threads.
On JAX, XLA's buffer assignment for the compiled step is reported as
`xla_step_temp_mb`. With `--memory`, glibc is told to hand freed buffers back
(`MALLOC_MMAP_THRESHOLD_`), as `keras-msrnn bench` does, and the peak resident
size of a steady step over the size before it is reported as
`step_memory_mb`; that makes every large allocation a page fault, which slows
both sides unevenly, so time and memory are measured in separate runs. `--output` appends JSON
lines and skips what it already holds, so a long run resumes; `--table`
prints the Markdown table with the keras-msrnn / reference ratios.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from keras_msrnn.bench import PAPER_ORDER as CELLS
from keras_msrnn.bench import report_worker_error, worker_failure

VARIANTS = ("plain", "ms")
MS_FACTOR = 4  # the largest factor of MS-RNN's scales (1, 2, 4, 4, 2, 1)


def _frames(args):
    rng = np.random.default_rng(0)
    shape = (args.batch, args.input_length + args.output_length, args.frame, args.frame, 1)
    return rng.random(shape, dtype="float32")


def _reference_model(args, cell, variant):
    import torch

    from tests.torch_reference import Model

    torch.manual_seed(0)
    return Model(cell, args.filters, args.kernel_size, 1, 6, variant == "ms")


def _memory():
    from keras_msrnn.backend import device_memory

    return device_memory


def _timed_steps(step, args):
    """`(first, median)` step times and the steady step's peak memory over the resident size."""
    memory = _memory()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    before = memory.process_megabytes("VmRSS")
    peak_reset = args.memory and memory.reset_peak_resident_size()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    result = {"first_step_s": round(first, 3), "step_s": round(float(np.median(times)), 4)}
    if peak_reset:
        result["step_memory_mb"] = round(memory.process_megabytes("VmHWM") - before, 1)
    return result


def run_reference(args, cell, variant):
    import torch

    torch.set_num_threads(args.threads)
    model = _reference_model(args, cell, variant)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    frames = torch.from_numpy(_frames(args)).permute(1, 0, 4, 2, 3)  # (S, B, C, H, W)

    def step():
        optimizer.zero_grad()
        outputs = model(frames, args.input_length, teacher_forcing=False)
        error = outputs - frames[1:]
        loss = error.square().sum((2, 3, 4)).mean() + error.abs().sum((2, 3, 4)).mean()
        if model.decoupling is not None:  # PredRNN-V2's term, 0.01 as in the MS-RNN code
            loss = loss + 0.01 * model.decoupling.sum((1, 3)).mean()
        loss.backward()
        optimizer.step()

    return {**_timed_steps(step, args), "params": sum(p.numel() for p in model.parameters())}


def run_keras(args, cell, variant):
    import keras

    from keras_msrnn.backend import device_memory
    from keras_msrnn.convert import from_msrnn

    reference = _reference_model(args, cell, variant)
    state = {name: value.detach().numpy() for name, value in reference.state_dict().items()}
    model = from_msrnn(
        state,
        cell=cell,
        multi_scale=variant == "ms",
        frame_shape=(args.frame, args.frame, 1),
        input_length=args.input_length,
        output_length=args.output_length,
        reconstruction_loss_weight=(args.input_length - 1) / args.output_length,
        unroll=args.unroll == "true",
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    frames = _frames(args)
    context, future = frames[:, : args.input_length], frames[:, args.input_length :]
    result = _timed_steps(lambda: model.train_on_batch((context, future), future), args)
    result["params"] = model.count_params()
    compiled = device_memory.compiled_step_megabytes(model, (context, future), future)
    if compiled is not None:
        result["xla_step_temp_mb"] = round(compiled, 1)
    return result


def _settings(args):
    settings = {
        "frame": args.frame,
        "filters": args.filters,
        "kernel_size": args.kernel_size,
        "batch": args.batch,
        "input_length": args.input_length,
        "output_length": args.output_length,
        "threads": args.threads,
        "steps": args.steps,
        "memory": args.memory,
    }
    if args.unroll != "true":  # results from before the option unrolled
        settings["unroll"] = args.unroll
    return settings


def _worker(args, implementation, cell, variant):
    """Runs one measurement in a fresh process; returns its JSON result."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.against_reference",
        "--worker",
        implementation,
        "--cell",
        cell,
        "--variant",
        variant,
    ]
    for key, value in _settings(args).items():
        if key != "memory":
            command += [f"--{key.replace('_', '-')}", str(value)]
    backend = implementation if implementation != "reference" else "torch"
    threads = str(args.threads)
    if args.memory:
        command.append("--memory")
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        TF_CPP_MIN_LOG_LEVEL="3",
        OMP_NUM_THREADS=threads,
        TF_NUM_INTRAOP_THREADS=threads,
        TF_NUM_INTEROP_THREADS="1",
        XLA_FLAGS=f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}",
    )
    if args.memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        cause = worker_failure(completed.stderr, completed.returncode)
        raise RuntimeError(f"{implementation} {cell} {variant} failed: {cause}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _read(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


def _cells(args):
    return CELLS if args.cell == "all" else tuple(c.strip() for c in args.cell.split(","))


def measure(args):
    done = {
        (r["implementation"], r["cell"], r["variant"])
        for r in _read(args.output)
        if r["settings"] == _settings(args)
    }
    cells = _cells(args)
    implementations = ["reference", *args.backends.split(",")]
    for cell in cells:
        for variant in VARIANTS:
            for implementation in implementations:
                if (implementation, cell, variant) in done:
                    continue
                result = _worker(args, implementation, cell, variant)
                record = {
                    "implementation": implementation,
                    "cell": cell,
                    "variant": variant,
                    "settings": _settings(args),
                    **result,
                }
                print(json.dumps(record), flush=True)
                if args.output:
                    with open(args.output, "a") as file:
                        file.write(json.dumps(record) + "\n")


def table(paths):
    """Markdown: reference seconds, then per backend seconds and the ratio to the reference."""
    records = [record for path in paths for record in _read(path)]
    by_key = {(r["implementation"], r["cell"], r["variant"]): r for r in records}
    backends = [
        b for b in ("torch", "tensorflow", "jax") if any(r["implementation"] == b for r in records)
    ]
    header = (
        "| model | authors' PyTorch (s) | " + " | ".join(f"{b} (s, ratio)" for b in backends) + " |"
    )
    rows = [header, "|" + "---|" * (2 + len(backends))]
    for cell in CELLS:
        for variant in VARIANTS:
            reference = by_key.get(("reference", cell, variant))
            if reference is None:
                continue
            name = ("MS-" if variant == "ms" else "") + cell
            cells = []
            for backend in backends:
                ours = by_key.get((backend, cell, variant))
                cells.append(
                    "-"
                    if ours is None
                    else f"{ours['step_s']:.2f} ({ours['step_s'] / reference['step_s']:.2f})"
                )
            rows.append(f"| {name} | {reference['step_s']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cell", default="all", help="'all' or a comma-separated list")
    parser.add_argument("--backends", default="torch,tensorflow,jax")
    parser.add_argument("--frame", type=int, default=32)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--input-length", type=int, default=5)
    parser.add_argument("--output-length", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--memory",
        action="store_true",
        help="measure step memory (glibc returns freed buffers; slows the timing)",
    )
    parser.add_argument(
        "--unroll",
        choices=("true", "false"),
        default="true",
        help="keras-msrnn's time loop: unrolled (true) or one loop of the graph (false)",
    )
    parser.add_argument("--output", help="append JSON lines here; what it holds is skipped")
    parser.add_argument("--table", nargs="+", metavar="FILE", help="print these results as a table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frame % MS_FACTOR:
        parser.error(
            f"--frame {args.frame} is not divisible by {MS_FACTOR}, the MS stack's largest "
            "pooling factor"
        )
    unknown = [cell for cell in _cells(args) if cell not in CELLS]
    if unknown:
        parser.error(f"unknown cell {unknown[0]!r}; cells: {', '.join(CELLS)}, or 'all'")
    if args.table:
        print(table(args.table))
    elif args.worker:
        run = run_reference if args.worker == "reference" else run_keras
        try:
            result = run(args, args.cell, args.variant)
        except Exception as error:
            report_worker_error(error)
            sys.exit(1)
        print(json.dumps(result))
    else:
        try:
            measure(args)
        except RuntimeError as error:
            sys.exit(f"against_reference: {error}")


if __name__ == "__main__":
    main()
