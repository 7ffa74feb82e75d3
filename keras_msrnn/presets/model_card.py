"""The model card (`README.md`) written into every preset."""

import json

LICENSE = "apache-2.0"


def _front_matter(metadata):
    tags = ["keras", "keras-msrnn", "spatiotemporal-prediction", "video-prediction"]
    if metadata.get("cell"):
        tags.append(str(metadata["cell"]))
    lines = [
        "---",
        "library_name: keras-msrnn",
        f"license: {metadata.get('license', LICENSE)}",
        "tags:",
    ]
    lines += [f"- {tag}" for tag in tags]
    if metadata.get("dataset"):
        lines += ["datasets:", f"- {metadata['dataset']}"]
    metric_names = sorted((metadata.get("metrics") or {}).get("future_frames", {}))
    if metric_names:
        lines += ["metrics:"] + [f"- {name}" for name in metric_names]
    lines.append("---")
    return "\n".join(lines)


def _metrics_table(metrics):
    rows = []
    for scope, values in (metrics or {}).items():
        if isinstance(values, dict):
            for name, value in sorted(values.items()):
                if isinstance(value, (int, float)):
                    rows.append(f"| {scope} | {name} | {value:.4g} |")
    if not rows:
        return "No metrics recorded."
    return "\n".join(["| frames | metric | value |", "|---|---|---|", *rows])


def render(config, metadata):
    """Markdown with YAML front matter for a preset's config and metadata."""
    model = config.get("config", {})
    name = metadata.get("name") or model.get("name", "model")
    arguments = "\n".join(
        f"* **{key}:** `{json.dumps(value)}`"
        for key, value in model.items()
        if key not in ("name", "trainable", "dtype")
    )
    training = metadata.get("training")
    sections = [
        _front_matter(metadata),
        f"# {name}",
        metadata.get("description", "A keras-msrnn preset."),
        "Load it on TensorFlow, PyTorch or JAX (set `KERAS_BACKEND`):",
        f'```python\nimport keras_msrnn\nmodel = keras_msrnn.from_preset("hf://<org>/{name}")\n'
        "forecast = model.predict(context)  # (batch, time, height, width, channels) in [0, "
        "1]\n```",
        f"## Architecture\n\n`{config.get('class_name')}` with "
        f"{metadata.get('parameter_count', '?'):,} parameters."
        if isinstance(metadata.get("parameter_count"), int)
        else "## Architecture",
        arguments,
        "## Training\n\n"
        + (f"```json\n{json.dumps(training, indent=2)}\n```" if training else "Not recorded."),
        "## Evaluation\n\n" + _metrics_table(metadata.get("metrics")),
        f"Saved with keras-msrnn {metadata.get('keras_msrnn_version')} and Keras "
        f"{metadata.get('keras_version')} "
        f"(format version {metadata.get('format_version')}).",
    ]
    return "\n\n".join(sections) + "\n"
