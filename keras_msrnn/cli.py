"""The `keras-msrnn` command: list, predict, evaluate, train, recipe, export, import-openstl,
push, bench."""

import argparse
import json
import os
import sys

import numpy as np


def _add(commands, name, handler, help_text, description=None):
    parser = commands.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


# === list ===


def run_list(args):
    from keras_msrnn.presets import list_presets

    presets = list_presets()
    if args.json:
        print(json.dumps(presets, indent=2))
        return 0
    print(f"{'name':<28}{'status':<13}{'where':<12}{'params':>10}{'MSE':>9}{'SSIM':>8}  budget")
    for name, entry in presets.items():
        if "alias_of" in entry:
            continue
        future = entry.get("metrics", {}).get("future_frames", {})
        training = entry.get("training", {})
        budget = (
            f"{training['steps']} steps x {training['batch_size']}, {training.get('backend')}"
            if training
            else ""
        )
        print(
            f"{name:<28}{entry['status']:<13}{entry['where'] or '-':<12}"
            f"{_number(entry.get('parameter_count'), ',d'):>10}"
            f"{_number(future.get('mse'), '.2f'):>9}"
            f"{_number(future.get('ssim'), '.3f'):>8}  {budget}"
        )
    aliases = ", ".join(
        f"{name} -> {entry['alias_of']}" for name, entry in presets.items() if "alias_of" in entry
    )
    print(f"\naliases: {aliases}")
    print("MSE (per-frame sum over pixels) and SSIM: future frames of the data set's test split.")
    print(
        "A 'recipe only' name has no weights yet: keras-msrnn train NAME --data-dir DIR "
        "--preset-out DIR trains it. An 'import recipe' name is OpenSTL's checkpoint: "
        "keras-msrnn list --json gives its import_command."
    )
    return 0


def _number(value, spec):
    return "-" if value is None else format(value, spec)


# === predict ===


FORECAST_FILES = ("forecast.npy", "forecast.gif", "forecast.png")


def prepare_output_folder(folder, file_names, overwrite=False):
    """Checks, before any work, that `folder` can take `file_names`.

    Creates the folder; refuses a path that is a file, one that cannot be
    written, and files that exist already unless `overwrite`.
    """
    import tempfile

    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"output {folder!r} is a file, not a folder; choose another --output.")
    taken = [name for name in file_names if os.path.exists(os.path.join(folder, name))]
    if taken and not overwrite:
        raise ValueError(
            f"{os.path.join(folder, taken[0])} already exists; pass --overwrite to replace it, or "
            "choose another --output."
        )
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"output folder {folder!r} cannot be written ({error.strerror or error})."
        ) from None


def run_predict(args):
    from keras_msrnn import visualize
    from keras_msrnn.presets import from_preset

    frames = visualize.load_frames(args.input)
    prepare_output_folder(args.output, FORECAST_FILES, args.overwrite)
    model = from_preset(args.preset)
    height, width, channels = model.frame_shape
    if frames.shape[-1] != channels:
        frames = visualize.load_frames(args.input, channels=channels)
    if frames.shape[1:3] != (height, width):
        raise ValueError(
            f"{args.input} has {frames.shape[1]}x{frames.shape[2]} frames; preset {args.preset!r} "
            f"expects {height}x{width}."
        )
    if frames.shape[-1] != channels:
        raise ValueError(
            f"{args.input} has {frames.shape[-1]} channels; the preset expects {channels}."
        )
    if len(frames) < model.input_length:
        raise ValueError(
            f"{args.input} holds {len(frames)} frames; the preset needs {model.input_length} "
            "context frames."
        )
    context = frames[: model.input_length]
    truth = frames[model.input_length : model.input_length + model.output_length]
    truth = truth if len(truth) == model.output_length else None
    forecast = model.forecast(context, verbose=int(args.verbose))
    stem = os.path.join(args.output, "forecast")
    np.save(stem + ".npy", forecast)
    visualize.save_gif(stem + ".gif", context, forecast, truth)
    visualize.save_strip(stem + ".png", context, forecast, truth)
    print(f"forecast of {len(forecast)} frames: {stem}.npy, {stem}.gif, {stem}.png")
    if truth is not None:
        from keras_msrnn.metrics import frame_mae, frame_mse, ssim

        pair = (truth[None], forecast[None])
        print(
            f"against the true frames: MSE {frame_mse(*pair).mean():.2f}, "
            f"MAE {frame_mae(*pair).mean():.2f}, SSIM {ssim(*pair).mean():.4f} (per frame)"
        )
    return 0


# === evaluate ===


def dataset_takes(name, argument):
    import inspect

    from keras_msrnn.datasets import DATASETS

    return name in DATASETS and argument in inspect.signature(DATASETS[name][0]).parameters


def run_evaluate(args):
    from keras_msrnn.datasets import get_dataset
    from keras_msrnn.evaluation import evaluate
    from keras_msrnn.presets import from_preset

    model = from_preset(args.preset)
    options = {
        "batch_size": args.batch_size,
        "input_length": model.input_length,
        "output_length": model.output_length,
    }
    if args.data_dir:
        options["data_dir"] = args.data_dir
    if args.num_sequences:
        options["max_sequences"] = args.num_sequences
    height, width, _ = model.frame_shape
    if height == width and dataset_takes(args.dataset, "frame_size"):
        options["frame_size"] = height  # data sets that resize their frames match the model
    dataset = get_dataset(args.dataset, args.split, **options)
    evaluate(
        model,
        dataset,
        convention=args.convention,
        ssim_convention=args.ssim_convention,
        max_batches=args.max_batches,
        output=args.output,
        plot=args.plot,
    )
    return 0


# === train ===


def run_train(args):
    from keras_msrnn import training
    from keras_msrnn.backend.distribute import is_primary_process

    recipe = training.load_recipe(args.recipe, args.variant)
    if args.dtype:
        recipe["model"]["dtype"] = args.dtype
    workdir = args.workdir or os.path.join("runs", recipe.get("name", "run"))
    result = training.train(
        recipe,
        workdir,
        args.data_dir,
        args.max_minutes,
        args.checkpoint_minutes,
        verbose=args.verbose,
        validation_sequences=args.validation_sequences,
        tensorboard=args.tensorboard,
        data_parallel=args.data_parallel,
    )
    exit_code = {"SIGINT": 130, "SIGTERM": 143}.get(result.stopped_by, 0)
    if not is_primary_process():  # the first process of a data-parallel job reports and exports
        return exit_code
    if not result.finished:
        print(
            f"stopped by {result.stopped_by} at step {result.step} of {result.total_steps}, "
            "checkpoint in "
            f"{workdir}; run the same command again to resume"
        )
        return exit_code
    if args.preset_out:
        metadata = training.export_preset(
            result.model, recipe, workdir, args.preset_out, args.data_dir
        )
        print(f"preset written to {args.preset_out}: {json.dumps(metadata['metrics'])}")
    return 0


# === export ===

EXPORT_FORMATS = ("tf_saved_model", "onnx")


def run_export(args):
    import shutil

    from keras_msrnn.presets import from_preset

    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(
            f"{args.output} already exists; pass --overwrite to replace it, or choose another path."
        )
    parent = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {args.output}: {parent} is not a writable folder.")
    model = from_preset(args.preset)
    if os.path.isdir(args.output):
        shutil.rmtree(args.output)
    elif os.path.exists(args.output):
        os.remove(args.output)
    options = {} if args.batch_size is None else {"batch_size": args.batch_size}
    try:
        model.export(args.output, format=args.format, verbose=False, **options)
    except ImportError as error:  # the exporter of this backend and format is not installed
        raise RuntimeError(
            f"{args.format} export from the {keras_backend()} backend needs a package that is "
            "missing "
            f"({error}); see the README's export section."
        ) from None
    batch = args.batch_size or ("1" if keras_backend() == "torch" else "any")
    shape = f"({batch}, {model.input_length}, {', '.join(map(str, model.frame_shape))})"
    print(
        f"exported {args.preset} as {args.format} to {args.output}: input {shape} float32 frames "
        "in [0, 1], "
        f"output the next {model.output_length} frames"
    )
    return 0


def keras_backend():
    import keras

    return keras.config.backend()


# === recipe ===


def run_recipe(args):
    from keras_msrnn import training

    recipe = training.load_recipe(args.name, args.variant)
    text = json.dumps(recipe, indent=2) + "\n"
    if args.output:
        with open(args.output, "w") as file:
            file.write(text)
        print(
            f"recipe {args.name} written to {args.output}; edit it, then: keras-msrnn train "
            f"{args.output}"
        )
    else:
        print(text, end="")
    return 0


# === import-openstl ===


def run_import_openstl(args):
    from keras_msrnn.convert.openstl import import_to_preset

    if os.path.exists(args.output) and os.listdir(args.output) and not args.overwrite:
        raise ValueError(
            f"{args.output} already holds files; pass --overwrite to replace them, or choose "
            "another folder."
        )
    if not os.path.isfile(args.checkpoint):
        raise ValueError(f"no checkpoint file {args.checkpoint}")
    overrides = {
        key: value
        for key, value in (
            ("dataname", args.dataname),
            ("pre_seq_length", args.pre_seq_length),
            ("aft_seq_length", args.aft_seq_length),
            ("in_shape", args.in_shape and [int(v) for v in args.in_shape.split(",")]),
        )
        if value is not None
    }
    model = import_to_preset(args.checkpoint, args.config, args.output, **overrides)
    print(
        f"imported {args.checkpoint} ({model.count_params():,} parameters, "
        f"{model.input_length} -> {model.output_length} frames of {model.frame_shape}) as the "
        f"preset {args.output}; load it with keras_msrnn.from_preset({args.output!r})"
    )
    return 0


# === push ===


def run_push(args):
    from keras_msrnn.presets import publish_zoo, upload_preset

    if args.all:
        if len(args.targets) != 1 or not args.targets[0].startswith("hf://"):
            raise ValueError(
                "push --all takes one hf://ORG, e.g. keras-msrnn push --all hf://keras-msrnn"
            )
        uploaded = publish_zoo(
            args.targets[0][len("hf://") :].rstrip("/"), args.message, args.private
        )
        for handle in uploaded.values():
            print(handle)
        print(
            f"{len(uploaded)} presets published; their revisions are pinned in "
            "keras_msrnn/presets/published.json"
        )
        return 0
    if len(args.targets) != 2:
        raise ValueError("push takes PRESET_DIR hf://ORG/NAME (or --all hf://ORG)")
    preset_dir, handle = args.targets
    print(upload_preset(handle, preset_dir, commit_message=args.message, private=args.private))
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-msrnn",
        description="Multi-scale recurrent spatiotemporal prediction (MS-RNN) for Keras 3.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = _add(commands, "list", run_list, "list the zoo's presets and their status")
    listing.add_argument("--json", action="store_true", help="print JSON")

    predict = _add(
        commands,
        "predict",
        run_predict,
        "forecast frames with a preset",
        "Forecast with a preset. INPUT holds at least input_length frames (.npy, .npz,\n"
        "animated .gif, or a folder of PNGs); frames after the context are shown as truth.\n"
        "Writes forecast.npy, forecast.gif and forecast.png (context / truth / forecast).",
    )
    predict.add_argument("preset", help="built-in name, hf://org/name[@rev] or a preset folder")
    predict.add_argument("input", help="frames: .npy, .npz, .gif or a folder of PNGs")
    predict.add_argument(
        "--output", "-o", default="forecast", help="output folder (default: ./forecast)"
    )
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="replace forecast files already in the output folder",
    )
    predict.add_argument("--verbose", action="store_true", help="show the prediction progress bar")

    evaluate = _add(commands, "evaluate", run_evaluate, "score a preset on a data set")
    evaluate.add_argument("preset")
    evaluate.add_argument(
        "dataset", help="one of moving_mnist, taxibj, kth, radar_germany, radar_knmi, radar_fmi"
    )
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument(
        "--num-sequences", type=int, help="evaluate the first N sequences of the split"
    )
    evaluate.add_argument("--batch-size", type=int, default=16)
    evaluate.add_argument("--max-batches", type=int)
    evaluate.add_argument(
        "--convention", choices=("hko", "dwd"), default="hko", help="rain thresholds"
    )
    evaluate.add_argument("--ssim-convention", choices=("msrnn", "openstl"), default="msrnn")
    evaluate.add_argument("--output", help="JSON file for the results and per-frame curves")
    evaluate.add_argument("--plot", help="PNG file for the per-frame curves (needs matplotlib)")

    train = _add(
        commands,
        "train",
        run_train,
        "train from a recipe (resumable)",
        "Train from a recipe. Stops cleanly at --max-minutes, on SIGTERM or on Ctrl-C with a\n"
        "checkpoint in the work directory (also written every --checkpoint-minutes); running\n"
        "the same command again continues where it stopped.",
    )
    train.add_argument("recipe", help="a zoo name (e.g. ms-predrnn-mnist) or a JSON recipe file")
    train.add_argument(
        "--variant",
        choices=("protocol", "cpu"),
        help="for a zoo name: the MS-RNN protocol (default) or the CPU budget",
    )
    train.add_argument("--workdir", help="checkpoints and logs (default: runs/<recipe name>)")
    train.add_argument("--data-dir")
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop with a checkpoint after this many minutes; rerun to resume",
    )
    train.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=5.0,
        help="minutes between checkpoints (default: 5)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bar (default), 2 a line per epoch",
    )
    train.add_argument("--preset-out", help="when finished, evaluate and save a preset here")
    train.add_argument(
        "--validation-sequences",
        type=int,
        help="score this many test sequences after every epoch (default: the recipe's, else none)",
    )
    train.add_argument(
        "--tensorboard", action="store_true", help="write TensorBoard logs in WORKDIR/tensorboard"
    )
    train.add_argument(
        "--dtype", help="dtype policy of the model, e.g. mixed_bfloat16 (mixed precision)"
    )
    train.add_argument(
        "--data-parallel",
        action="store_true",
        help="split each batch over all devices (JAX: keras.distribution.DataParallel; "
        "TensorFlow: tf.distribute.MirroredStrategy; torch: DDP, one process per device "
        "under torchrun)",
    )

    recipe = _add(
        commands,
        "recipe",
        run_recipe,
        "print a zoo name's training recipe as JSON (to read or edit)",
    )
    recipe.add_argument("name", help="a zoo name, e.g. ms-predrnn-mnist")
    recipe.add_argument(
        "--variant", choices=("protocol", "cpu"), help="default: the MS-RNN protocol"
    )
    recipe.add_argument("--output", "-o", help="write the JSON to this file")

    export = _add(
        commands,
        "export",
        run_export,
        "export a preset for inference (SavedModel or ONNX)",
        "Export a preset as a TensorFlow SavedModel (from the TensorFlow or JAX backend) or\n"
        "an ONNX file (from TensorFlow, with tf2onnx, or PyTorch, with onnx and onnxscript).",
    )
    export.add_argument("preset", help="zoo name, hf://org/name[@rev] or a preset folder")
    export.add_argument("output", help="the SavedModel folder or the .onnx file to write")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="tf_saved_model")
    export.add_argument(
        "--batch-size", type=int, help="a fixed batch size (default: any; PyTorch: 1)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing output")

    openstl = _add(
        commands,
        "import-openstl",
        run_import_openstl,
        "turn an OpenSTL checkpoint into a preset",
        "Import an OpenSTL checkpoint (.pth, or a Lightning .ckpt) of ConvLSTM, PredRNN or\n"
        "PredRNNv2 with its OpenSTL config .py (read, never run) and write a preset folder.\n"
        "OpenSTL's configs leave frame size and lengths to the data set: --dataname mmnist\n"
        "(or taxibj, kth, kth20, kth40) fills them, as OpenSTL's -d does.",
    )
    openstl.add_argument("checkpoint", help="OpenSTL's .pth or .ckpt")
    openstl.add_argument("--config", required=True, help="OpenSTL config .py, e.g. PredRNN.py")
    openstl.add_argument("--output", "-o", required=True, help="the preset folder to write")
    openstl.add_argument("--dataname", help="OpenSTL data set: frame size and sequence lengths")
    openstl.add_argument("--pre-seq-length", type=int)
    openstl.add_argument("--aft-seq-length", type=int)
    openstl.add_argument("--in-shape", help="T,C,H,W as in OpenSTL, e.g. 10,1,64,64")
    openstl.add_argument("--overwrite", action="store_true", help="replace an existing preset")

    push = _add(
        commands,
        "push",
        run_push,
        "upload a preset folder (or every trained zoo preset) to the Hugging Face Hub",
        "Upload a preset folder: keras-msrnn push PRESET_DIR hf://ORG/NAME\n"
        "Publish the zoo: keras-msrnn push --all hf://ORG uploads every trained preset to\n"
        "hf://ORG/<name> and pins each name to its new commit in published.json.",
    )
    push.add_argument("targets", nargs="+", metavar="PRESET_DIR HANDLE | hf://ORG")
    push.add_argument("--all", action="store_true", help="publish every trained zoo preset")
    push.add_argument("--message")
    push.add_argument("--private", action="store_true")

    from keras_msrnn import bench

    bench_parser = _add(
        commands,
        "bench",
        bench.run,
        "time and memory of a training step, plain vs multi-scale",
        bench.__doc__,
    )
    bench.add_arguments(bench_parser)
    return parser


EXPECTED_ERRORS = (ValueError, RuntimeError, OSError)


def main(argv=None):
    # Presets are a few MB: the Hub client's progress bars would only bury the one-line messages.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    _quiet_hub_progress()
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"keras-msrnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure is one line; --debug shows the traceback
        if args.debug:
            raise
        print(f"keras-msrnn {args.command}: {_one_line(error)}", file=sys.stderr)
        return 1


def _quiet_hub_progress():
    import huggingface_hub.utils

    if os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] not in ("0", "false", "False"):
        huggingface_hub.utils.disable_progress_bars()


def _one_line(error):
    message = " ".join(str(error).split())
    if isinstance(error, EXPECTED_ERRORS) and message:
        return message
    message = message or "no message"
    return f"{type(error).__name__}: {message} (an unexpected error: --debug shows where)"


if __name__ == "__main__":
    sys.exit(main())
