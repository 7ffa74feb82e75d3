"""Maintenance of the zoo: forecast fixtures and the MODEL_CARDS.md tables.

Run from the repository root after presets were trained or changed:

    python zoo/zoo_tools.py forecasts [NAME ...]  # tests/data/zoo/<name>.npy per trained preset
    python zoo/zoo_tools.py cards       # the generated tables of MODEL_CARDS.md

`forecasts` records each preset's forecast of the bundled sample
`examples/data/moving_mnist_test_0.npy`; `tests/test_zoo.py` holds every
backend to it. `cards` rewrites the part of MODEL_CARDS.md between the
`<!-- zoo tables -->` markers from the presets' `metadata.json` and the
benchmark reports in `benchmarks/zoo_cpu.jsonl`, so every number there is
one a preset or a benchmark recorded.
"""

import json
import os
import sys

import keras
import numpy as np

import keras_msrnn
from keras_msrnn import recipes
from keras_msrnn.presets import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "examples", "data", "moving_mnist_test_0.npy")
FORECASTS = os.path.join(ROOT, "tests", "data", "zoo")
BENCH = os.path.join(ROOT, "benchmarks", "zoo_cpu.jsonl")
CARDS = os.path.join(ROOT, "MODEL_CARDS.md")
BEGIN, END = "<!-- zoo tables -->", "<!-- end of zoo tables -->"
OPENSTL_PREDRNN = "OpenSTL's PredRNN (23.8 M parameters, 200 GPU epochs): MSE 23.97, SSIM 0.946"


def sample_context(input_length):
    return np.load(SAMPLE)[None, :input_length, :, :, None].astype("float32") / np.float32(255)


def trained_names():
    return [
        name
        for name in recipes.preset_names()
        if registry.locate(name)[0] in ("bundled", "repository")
    ]


def record_forecasts(*names):
    """Records the named presets' forecasts (all trained presets when none are named)."""
    os.makedirs(FORECASTS, exist_ok=True)
    unknown = sorted(set(names) - set(trained_names()))
    if unknown:
        sys.exit(f"not trained presets: {', '.join(unknown)}")
    for name in names or trained_names():
        model = keras_msrnn.from_preset(name)
        forecast = keras.ops.convert_to_numpy(model(sample_context(model.input_length)))[0]
        np.save(os.path.join(FORECASTS, f"{name}.npy"), forecast)
        print(f"{name}: forecast {forecast.shape} recorded")


def _bench_reports():
    reports = {}
    if os.path.exists(BENCH):
        with open(BENCH) as file:
            for line in file:
                report = json.loads(line)
                reports[report["cell"], report["backend"]] = report
    return reports


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def status_table():
    rows = [
        "| name | status | where | parameters | MSE | MAE | SSIM | PSNR | budget |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in keras_msrnn.list_presets().items():
        if "alias_of" in entry:
            continue
        metrics = entry.get("metrics", {}).get("future_frames", {})
        training = entry.get("training", {})
        budget = (
            f"{training['steps']} steps x {training['batch_size']}, "
            f"{training['wall_time_s'] / 60:.0f} min, "
            f"{training['backend']}"
            if training
            else "-"
        )
        rows.append(
            f"| `{name}` | {entry['status']} | {entry['where'] or '-'} | "
            f"{_fmt(entry.get('parameter_count'), ',d')} "
            f"| {_fmt(metrics.get('mse'), '.2f')} | {_fmt(metrics.get('mae'), '.2f')} | "
            f"{_fmt(metrics.get('ssim'), '.4f')} "
            f"| {_fmt(metrics.get('psnr'), '.2f')} | {budget} |"
        )
    return "\n".join(rows)


def comparison_table():
    """Plain vs MS per cell at equal budget: metrics, step time, step memory, parameters."""
    presets = keras_msrnn.list_presets()
    bench = _bench_reports()
    rows = [
        "| cell | steps x batch | MSE plain / MS | SSIM plain / MS | PSNR plain / MS | train min "
        "plain / MS "
        "| step s plain / MS (ratio) | step MB plain / MS (ratio) | parameters |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell, stack_cell in recipes.CELLS.items():
        plain, ms = presets[f"{cell}-mnist"], presets[f"ms-{cell}-mnist"]
        if plain["status"] != registry.TRAINED or ms["status"] != registry.TRAINED:
            rows.append(f"| {cell} | not trained yet | | | | | | | |")
            continue
        p, m = plain["metrics"]["future_frames"], ms["metrics"]["future_frames"]
        # Timed on the backend the pair trained on, as its training time.
        backend = plain["training"]["backend"]
        report = bench.get((stack_cell, backend))
        if report:
            timing = (
                f"{report['plain']['step_s']:.2f} / {report['ms']['step_s']:.2f} "
                f"({report['ms_over_plain']['step_time']:.2f}, {backend})"
            )
            memory = (
                f"{report['plain']['step_memory_mb']:.0f} / {report['ms']['step_memory_mb']:.0f} "
                f"({report['ms_over_plain']['step_memory']:.2f})"
            )
        else:
            timing = memory = "not measured"
        rows.append(
            f"| {cell} | {plain['training']['steps']} x {plain['training']['batch_size']} "
            f"| {p['mse']:.2f} / {m['mse']:.2f} | {p['ssim']:.4f} / {m['ssim']:.4f} | "
            f"{p['psnr']:.2f} / {m['psnr']:.2f} "
            f"| {plain['training']['wall_time_s'] / 60:.0f} / "
            f"{ms['training']['wall_time_s'] / 60:.0f} "
            f"| {timing} | {memory} | {plain['parameter_count']:,} |"
        )
    return "\n".join(rows)


def write_cards(*names):
    if names:
        sys.exit("cards takes no names: it rewrites the tables for the whole zoo")
    with open(CARDS) as file:
        text = file.read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{CARDS} lacks the markers {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    generated = (
        "\n_Generated by `python zoo/zoo_tools.py cards` from the presets' metadata and "
        "`benchmarks/zoo_cpu.jsonl`._\n\n"
        "### MS vs plain on Moving MNIST, equal budget\n\n"
        f"{comparison_table()}\n\n"
        "### All names\n\n"
        f"{status_table()}\n"
    )
    with open(CARDS, "w") as file:
        file.write(head + BEGIN + "\n" + generated + END + tail)
    print(f"{CARDS}: zoo tables rewritten")


if __name__ == "__main__":
    commands = {"forecasts": record_forecasts, "cards": write_cards}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python zoo/zoo_tools.py {{{','.join(commands)}}} [NAME ...]")
    commands[sys.argv[1]](*sys.argv[2:])
