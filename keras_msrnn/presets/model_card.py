"""The model card (`README.md`) written into every preset.

The YAML front matter is written by `huggingface_hub.ModelCardData`, so it
is what the Hub validates: library, license, tags, pipeline tag, source
data set and the test metrics as `model-index` evaluation results.
"""

import json

LICENSE = "apache-2.0"
# The Hub has no task for forecasting the next frames of a video; "other"
# with the "video-prediction" tag is how such models are listed there.
PIPELINE_TAG = "other"
# The Hub data sets the zoo's data are made from (Moving MNIST is generated
# from the MNIST digits); the other data sets have no Hub copy to link.
HUB_DATASETS = {"moving_mnist": ["mnist"]}
METRIC_NAMES = {
    "mse": "MSE per frame (sum over pixels)",
    "mae": "MAE per frame (sum over pixels)",
    "ssim": "SSIM",
    "psnr": "PSNR (dB)",
}


def card_data(name, metadata):
    """The card's `huggingface_hub.ModelCardData`."""
    from huggingface_hub import EvalResult, ModelCardData

    tags = ["keras", "keras-msrnn", "spatiotemporal-prediction", "video-prediction"]
    if metadata.get("cell"):
        tags.append(str(metadata["cell"]))
    dataset = metadata.get("dataset")
    future = (metadata.get("metrics") or {}).get("future_frames") or {}
    results = [
        EvalResult(
            task_type="video-prediction",
            task_name="Video prediction (future frames)",
            dataset_type=str(dataset),
            dataset_name=f"{dataset} test split",
            metric_type=metric,
            metric_value=value,
            metric_name=METRIC_NAMES.get(metric, metric),
        )
        for metric, value in sorted(future.items())
        if isinstance(value, (int, float)) and dataset
    ]
    return ModelCardData(
        library_name="keras-msrnn",
        license=metadata.get("license", LICENSE),
        tags=tags,
        pipeline_tag=PIPELINE_TAG,
        datasets=HUB_DATASETS.get(dataset),
        # Only model-index uses the name; without results it would be a stray key.
        model_name=name if results else None,
        eval_results=results or None,
    )


def _metrics_table(metrics):
    rows = []
    for scope, values in (metrics or {}).items():
        if isinstance(values, dict):
            for metric, value in sorted(values.items()):
                if isinstance(value, (int, float)):
                    rows.append(f"| {scope} | {METRIC_NAMES.get(metric, metric)} | {value:.4g} |")
    if not rows:
        return "No metrics recorded."
    return "\n".join(["| frames | metric | value |", "|---|---|---|", *rows])


def render(config, metadata, name, load_identifier):
    """Markdown with YAML front matter for a preset.

    Args:
        config: the preset's `config.json` content.
        metadata: its `metadata.json` content.
        name: the preset's name (the card's title).
        load_identifier: what `from_preset` is given to load it: a zoo
            name, an `hf://` handle or a folder.
    """
    model = config.get("config", {})
    arguments = "\n".join(
        f"* **{key}:** `{json.dumps(value)}`"
        for key, value in model.items()
        if key not in ("name", "trainable", "dtype")
    )
    training = metadata.get("training")
    parameters = metadata.get("parameter_count")
    body = [
        f"# {name}",
        metadata.get("description") or "A keras-msrnn preset.",
        "Load it on TensorFlow, PyTorch or JAX (set `KERAS_BACKEND`):",
        f'```python\nimport keras_msrnn\n\nmodel = keras_msrnn.from_preset("{load_identifier}")\n'
        "forecast = model.forecast(context)  # frames (time, height, width, channels)\n```",
        f"## Architecture\n\n`{config.get('class_name')}` with {parameters:,} parameters."
        if isinstance(parameters, int)
        else "## Architecture",
        arguments,
        "## Training\n\n"
        + (f"```json\n{json.dumps(training, indent=2)}\n```" if training else "Not recorded."),
        "## Evaluation\n\n" + _metrics_table(metadata.get("metrics")),
        f"Saved with keras-msrnn {metadata.get('keras_msrnn_version')} and Keras "
        f"{metadata.get('keras_version')} (format version {metadata.get('format_version')}).",
    ]
    return f"---\n{card_data(name, metadata).to_yaml()}\n---\n\n" + "\n\n".join(body) + "\n"
