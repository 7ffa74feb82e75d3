"""Evaluating a forecaster on a data set, in both frame conventions."""

from __future__ import annotations

import json

import keras
import numpy as np
from keras import ops

from keras_msrnn.backend.inference import without_gradients
from keras_msrnn.frames import to_unit_frames
from keras_msrnn.metrics import ForecastEvaluation

FRAME_METRICS = ("mse", "mae", "ssim", "psnr", "gdl")
RADAR_METRICS = (
    "b_mse",
    "b_mae",
    "csi_0.5",
    "csi_2",
    "csi_5",
    "csi_10",
    "csi_30",
    "hss_0.5",
    "hss_30",
    "fss_0.5",
    "fss_5",
)
RADAR_PREFIXES = ("b_", "csi", "hss", "pod", "far", "fss")


def metric_unit(name, frame_pixels):
    """How to read a headline metric, for tables and plots."""
    if name in ("mse", "mae", "gdl", "b_mse", "b_mae"):
        return f"sum over the {frame_pixels:,} pixel values of a frame"
    if name == "psnr":
        return "dB"
    return ""


def predict_all_frames(model, context, future):
    """The model's `S - 1` predictions: teacher-forced over the context, then free."""
    frames = np.concatenate([context, future[:, :-1]], axis=1)
    with without_gradients():
        return ops.convert_to_numpy(model.rollout(frames))


def evaluate(
    model: keras.Model,
    dataset,
    convention: str = "hko",
    ssim_convention: str = "msrnn",
    max_batches: int | None = None,
    output: str | None = None,
    plot: str | None = None,
    verbose: bool = True,
) -> dict:
    """Scores a model on a data set as the MS-RNN code and the literature do.

    Every batch `((context, future), future)` is unrolled over all `S - 1`
    steps: the predictions of context frames 2..T_in (each from the true
    previous frames) and the free-running forecast. Metrics are reported for
    all `S - 1` frames (MS-RNN code parity) and for the future frames only
    (the literature's convention), with per-frame curves.

    Args:
        model: an `MSStack` (or any model with `rollout`).
        dataset: a `keras_msrnn.datasets` data set (or any sequence of
            `((context, future), future)` batches).
        convention: `"hko"` or `"dwd"`: the rain conversion of the radar
            thresholds (HKO's is what the MS-RNN code uses for non-radar
            data).
        ssim_convention: `"msrnn"` or `"openstl"`.
        max_batches: int. Evaluate only the first batches.
        output: path of a JSON file to write the results to.
        plot: path of a PNG with the per-frame MSE and SSIM curves
            (needs matplotlib).
        verbose: bool. Print a progress bar and the results table.

    Returns:
        `{"all_frames": ..., "future_frames": ...}`, each with `headline`
        (means over frames) and `per_frame` curves, plus `sequences`.

    Example:

    ```python
    test = keras_msrnn.datasets.MovingMNIST("test", batch_size=16)
    results = keras_msrnn.evaluate(model, test, output="results.json")
    results["future_frames"]["headline"]["mse"]
    ```
    """
    evaluation = ForecastEvaluation(convention, ssim_convention)
    batches = len(dataset) if max_batches is None else min(max_batches, len(dataset))
    if batches < 1:
        raise ValueError("The data set has no batches to evaluate.")
    progress = keras.utils.Progbar(batches, unit_name="batch") if verbose else None
    output_length = None
    for index in range(batches):
        (context, future), _ = dataset[index]
        context = to_unit_frames(context, f"batch {index} context")
        future = to_unit_frames(future, f"batch {index} future")
        expected = getattr(model, "frame_shape", None)
        if expected is not None and tuple(context.shape[2:]) != tuple(expected):
            raise ValueError(
                f"The data set yields frames of {context.shape[2:]}; the model expects "
                f"{tuple(expected)} (height, width, channels). Give the data set the model's "
                "frame size."
            )
        output_length = future.shape[1]
        truth = np.concatenate([context[:, 1:], future], axis=1)
        evaluation.update(truth, predict_all_frames(model, context, future))
        if progress is not None:
            progress.update(index + 1)
    radar = bool(getattr(dataset, "radar", False))
    results = {
        "all_frames": _select(evaluation.results(), radar),
        "future_frames": _select(evaluation.results(frames=slice(-output_length, None)), radar),
        "sequences": evaluation.count,
        "frame_pixels": int(np.prod(truth.shape[2:])),
        "conventions": {"thresholds": convention if radar else None, "ssim": ssim_convention},
    }
    if verbose:
        print(format_table(results))
    if output:
        with open(output, "w") as file:
            json.dump(results, file, indent=2)
        if verbose:
            print(f"results written to {output}")
    if plot:
        plot_curves(results, plot)
        if verbose:
            print(f"per-frame curves drawn in {plot}")
    return results


def _select(frame_results, radar):
    """Drops the rain-rate scores for data that is not radar: they mean nothing there."""
    if radar:
        return frame_results
    keep = {
        name: value
        for name, value in frame_results["headline"].items()
        if not name.startswith(RADAR_PREFIXES)
    }
    curves = {
        name: value
        for name, value in frame_results["per_frame"].items()
        if not name.startswith(RADAR_PREFIXES)
    }
    return dict(frame_results, headline=keep, per_frame=curves)


def format_table(results):
    """A plain-text table of headline metrics for both frame conventions, with units."""
    header = f"{'metric':<10}{'future frames':>16}{'all S-1 frames':>18}  unit"
    lines = [header, "-" * len(header)]
    future, every = results["future_frames"]["headline"], results["all_frames"]["headline"]
    for name in FRAME_METRICS + RADAR_METRICS:
        if name in future:
            unit = metric_unit(name, results["frame_pixels"])
            lines.append(f"{name:<10}{future[name]:>16.4f}{every[name]:>18.4f}  {unit}")
    lines.append(f"({results['sequences']} sequences)")
    return "\n".join(lines)


def plot_curves(results, path):
    """Per-frame MSE and SSIM over all S-1 frames, the context frames shaded.

    Draws on a `matplotlib.figure.Figure` directly, so it neither needs nor
    changes the process's plotting backend (notebooks keep theirs).
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise RuntimeError("Plotting needs matplotlib: pip install 'keras-msrnn[plot]'.") from None
    every = results["all_frames"]["per_frame"]
    frames = np.arange(2, len(every["mse"]) + 2)
    future_start = frames[-len(results["future_frames"]["per_frame"]["mse"])]
    figure = Figure(figsize=(10, 3.6))
    axes = figure.subplots(1, 2)
    titles = {"mse": "MSE per frame", "ssim": "SSIM per frame"}
    for axis, name in zip(axes, ("mse", "ssim")):
        axis.plot(frames, every[name], marker="o", markersize=3, label="model prediction")
        axis.axvspan(
            frames[0] - 0.5, future_start - 0.5, color="0.9", label="context (teacher-forced)"
        )
        axis.axvline(future_start - 0.5, color="tab:red", linewidth=1, label="first forecast frame")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("frame number")
        unit = metric_unit(name, results["frame_pixels"])
        axis.set_ylabel(f"{name.upper()}" + (f"\n({unit})" if unit else ""))
        axis.set_title(titles[name])
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    figure.suptitle(
        f"{results['sequences']} test sequences; frame 1 is the first context frame", fontsize=9
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path
