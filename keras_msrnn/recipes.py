"""The zoo's recipes: one for every preset name, built from one table.

Every preset is named `[ms-]<cell>-<dataset>`:

- `ms-` marks the multi-scale stack (`scales=(1, 2, 4, 4, 2, 1)`); without
  it the name is the plain stack of the same six layers;
- `<cell>` is one of `convlstm`, `trajgru`, `predrnn`, `predrnn-pp`
  (PredRNN++), `mim`, `motionrnn`, `predrnn-v2`, `preciplstm`;
- `<dataset>` is one of `mnist` (Moving MNIST), `taxibj`, `kth` and
  `radar-dwd` (MS-RNN's German radar set).

That is 2 x 8 x 4 = 64 names. The budget a preset was trained with and the
hardware are in its card and `metadata.json`, never in its name.

`get_recipe(name)` is the MS-RNN protocol for that pair
(`msrnn_reference.md` section 5: 6 layers x 64 filters, 3x3 kernels, no
patching, Adam 3e-4 without decay, batch 4, linear scheduled sampling over
the whole run, or the per-epoch reverse schedule for PredRNN-V2, and the
loss over all `S - 1` predicted frames). `get_recipe(name, variant="cpu")`
is the smaller budget that the zoo's Moving MNIST presets were trained with
on a 2-core CPU; plain and multi-scale variants of a cell share it exactly.
"""

from __future__ import annotations

import copy
import dataclasses

CELLS = {  # preset spelling -> `MSStack(cell=...)`
    "convlstm": "convlstm",
    "trajgru": "trajgru",
    "predrnn": "predrnn",
    "predrnn-pp": "predrnn++",
    "mim": "mim",
    "motionrnn": "motionrnn",
    "predrnn-v2": "predrnn_v2",
    "preciplstm": "preciplstm",
}
MS_PREFIX = "ms-"
MS_SCALES = [1, 2, 4, 4, 2, 1]
PLAIN_SCALES = [1] * 6


@dataclasses.dataclass(frozen=True)
class DatasetProtocol:
    """How MS-RNN trains and tests on one data set."""

    title: str
    dataset: dict
    input_length: int
    output_length: int
    epochs: int
    steps_per_epoch: int
    test_sequences: int
    note: str = ""


DATASETS = {
    "mnist": DatasetProtocol(
        title="Moving MNIST (64x64x1, 10 -> 10)",
        dataset={"name": "moving_mnist", "config": {"speed_range": [2, 6], "num_sequences": 7000}},
        input_length=10,
        output_length=10,
        epochs=20,
        steps_per_epoch=1750,
        test_sequences=3000,
        note="7,000 training sequences per epoch (MS-RNN's 70% of 10,000), new each epoch.",
    ),
    "taxibj": DatasetProtocol(
        title="TaxiBJ inflow (32x32x1, 4 -> 4)",
        dataset={"name": "taxibj", "config": {"protocol": "msrnn"}},
        input_length=4,
        output_length=4,
        epochs=20,
        steps_per_epoch=5270,
        test_sequences=1344,
        note="Steps per epoch estimated: about 21,100 ST-ResNet training windows / batch 4.",
    ),
    "kth": DatasetProtocol(
        title="KTH walking, jogging, running (88x88x1, 10 -> 10)",
        dataset={"name": "kth", "config": {"protocol": "msrnn"}},
        input_length=10,
        output_length=10,
        epochs=20,
        steps_per_epoch=931,
        test_sequences=2166,
        note="Steps per epoch from msrnn_reference.md 5.2's estimate of 3,725 training windows.",
    ),
    "radar-dwd": DatasetProtocol(
        title="German radar, DWD RADOLAN RY (124x124x1, 5 -> 5, 30-minute steps)",
        dataset={"name": "radar_germany", "config": {}},
        input_length=5,
        output_length=5,
        epochs=16,
        steps_per_epoch=3900,
        test_sequences=3000,
        note="Steps per epoch estimated: RYDL.hdf5 2006-2014, about 15,600 sequences / batch 4.",
    ),
}

# The CPU budget of the zoo's Moving MNIST presets: 6 x 32 filters on 4x4
# patches (16x16 layer grids), batch 8, Adam 1e-3 cosine-decayed to 1e-4,
# scheduled sampling over the first 80% of the steps. Steps per cell:
# 2,700 s (45 minutes) over the plain stack's training-step time measured
# with `keras-msrnn bench` on this project's 2-core CPU, rounded down to 100
# (benchmarks/zoo_cpu.jsonl; MODEL_CARDS.md lists the measurements), on
# TensorFlow, except TrajGRU, which trains on PyTorch, where its warp is one
# grid-sample kernel (2.77 s a step against TensorFlow's gather), and
# MotionRNN, also on PyTorch: 9.27 s a step against 11.46 s, and a first
# step of 21 s against TensorFlow's 943 s of compiling; its 291 steps are
# rounded up to 300 (46 minutes), as 200 would leave a third of the budget.
# PredRNN-V2 takes PredRNN's steps: its cell is PredRNN's plus the
# decoupling loss, and its calibration overlapped a training run.
CPU_STEPS = {
    "convlstm": 4500,
    "trajgru": 900,
    "predrnn": 2200,
    "predrnn-pp": 1700,
    "mim": 1200,
    "motionrnn": 300,
    "predrnn-v2": 2200,
    "preciplstm": 1000,
}
CPU_STEPS_PER_EPOCH = 100
VARIANTS = ("protocol", "cpu")


def preset_names() -> list[str]:
    """All 64 names, grouped by data set, then cell, plain before multi-scale."""
    return [
        prefix + f"{cell}-{dataset}"
        for dataset in DATASETS
        for cell in CELLS
        for prefix in ("", MS_PREFIX)
    ]


def parse_name(name: str) -> tuple[str, str, bool] | None:
    """`(cell, dataset, multi_scale)` of a preset name, or None if it is not one."""
    multi_scale = name.startswith(MS_PREFIX)
    rest = name[len(MS_PREFIX) :] if multi_scale else name
    for dataset in DATASETS:
        cell = rest[: -len(dataset) - 1]
        if rest.endswith("-" + dataset) and cell in CELLS:
            return cell, dataset, multi_scale
    return None


def get_recipe(name: str, variant: str = "protocol") -> dict:
    """The training recipe of a preset name (a fresh dict to use or edit).

    Args:
        name: `[ms-]<cell>-<dataset>`, see `preset_names()`.
        variant: `"protocol"` (MS-RNN's) or `"cpu"` (the budget the zoo's
            Moving MNIST presets were trained with).
    """
    parsed = parse_name(name)
    if parsed is None:
        raise ValueError(
            f"{name!r} is not a zoo name; names are [ms-]<cell>-<dataset>, e.g. ms-predrnn-mnist."
        )
    if variant not in VARIANTS:
        raise ValueError(f"Unknown recipe variant {variant!r}; choose from {', '.join(VARIANTS)}.")
    cell, dataset, multi_scale = parsed
    protocol = DATASETS[dataset]
    if variant == "cpu" and dataset != "mnist":
        raise ValueError(f"The 'cpu' variant exists for Moving MNIST only, not for {name!r}.")
    if variant == "cpu":
        steps, steps_per_epoch, batch_size, filters, patch_size = (
            CPU_STEPS[cell],
            CPU_STEPS_PER_EPOCH,
            8,
            32,
            4,
        )
        sampling_steps = int(0.8 * steps)
        optimisation = {"learning_rate": 1e-3, "final_learning_rate": 1e-4}
        test_sequences = 1000
    else:
        steps_per_epoch = protocol.steps_per_epoch
        steps, sampling_steps = protocol.epochs * steps_per_epoch, protocol.epochs * steps_per_epoch
        batch_size, filters, patch_size = 4, 64, 1
        optimisation = {"learning_rate": 3e-4, "final_learning_rate": 3e-4}
        test_sequences = protocol.test_sequences
    if cell == "predrnn-v2":
        sampling = {
            "class_name": "EpochReverseSampling",
            "config": {"epochs": steps // steps_per_epoch, "steps_per_epoch": steps_per_epoch},
        }
    else:
        sampling = {"class_name": "LinearSampling", "config": {"decay_steps": sampling_steps}}
    stack = "MS" if multi_scale else "plain"
    return copy.deepcopy(
        {
            "name": name,
            "variant": variant,
            "description": (
                f"{stack} {cell} stack, 6 x {filters}, on {protocol.title}; "
                f"{'MS-RNN protocol' if variant == 'protocol' else 'CPU budget'}: {steps} steps "
                f"of batch {batch_size}."
            ),
            "model": {
                "cell": CELLS[cell],
                "filters": filters,
                "scales": MS_SCALES if multi_scale else PLAIN_SCALES,
                "kernel_size": 3,
                "input_length": protocol.input_length,
                "output_length": protocol.output_length,
                "patch_size": patch_size,
                # MS-RNN's loss covers all S - 1 predicted frames.
                "reconstruction_loss_weight": (protocol.input_length - 1) / protocol.output_length,
                "sampling": sampling,
            },
            "dataset": protocol.dataset,
            "training": {
                "batch_size": batch_size,
                "steps": steps,
                "steps_per_epoch": steps_per_epoch,
                **optimisation,
                "seed": 2022,
            },
            "evaluation": {"num_sequences": test_sequences, "batch_size": 16},
            # Scored after every epoch (train --validation-sequences overrides it).
            "validation": {"num_sequences": 0 if variant == "cpu" else 64},
        }
    )
