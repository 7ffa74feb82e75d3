"""Does a training step wait on data? Data sets alone, and inside `fit`, on one backend.

    KERAS_BACKEND=tensorflow python -m benchmarks.data_loading --output data_loading.jsonl
    python -m benchmarks.data_loading --table data_loading.jsonl

Run from the repository root. With the recipe's training set (default: the
zoo's `ms-convlstm-mnist` at its CPU budget, the zoo's fastest step, so the
one where data would show first):

- *alone*: samples per second of reading batches, `dataset[i]` (the
  `PyDataset`) and `dataset.as_tf_dataset()` (`tf.data` with prefetch),
  each over `--batches` batches after one warm-up batch;
- *in fit*: the median step time of `model.fit` over `--steps` steps (after
  a one-step fit that traces and compiles) fed by the data set with one
  worker, with `workers=2` threads, with `workers=2,
  use_multiprocessing=True`, through `as_tf_dataset()`, by a Python generator
  of its batches (how `keras_msrnn.training` feeds `fit`), and by one batch
  held in memory, which never waits. `data_wait_s` is a feed's step time
  minus the in-memory one: the time a step waits on its data.

Each run appends one JSON line per backend to `--output`. With `--dataset
NAME --data-dir DIR` (a `keras_msrnn.datasets` name, e.g. `radar_knmi`) only
the *alone* rates of that data set's training split are measured, at the
recipe's batch size.
"""

import argparse
import json
import os
import statistics
import time

import keras

from keras_msrnn import training
from keras_msrnn.datasets import get_dataset
from tests.conftest import DATA_DIR


class RepeatedBatch(keras.utils.PyDataset):
    """One batch, `length` times: a feed that never waits."""

    def __init__(self, batch, length):
        super().__init__()
        self.batch, self.length = batch, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.batch


class StepTimes(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.started)

    def on_train_begin(self, logs=None):
        self.times = []


def samples_per_second(batches, count, batch_size):
    iterator = iter(batches)
    next(iterator)  # warm-up: opens files, starts prefetching
    started = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return round(count * batch_size / (time.perf_counter() - started), 1)


def pydataset_batches(dataset):
    index = 0
    while True:
        yield dataset[index % len(dataset)]
        index += 1


def fit_step_s(model, feed, steps):
    timer = StepTimes()
    model.fit(feed, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer], shuffle=False)
    return round(statistics.median(timer.times), 4)


def measure(recipe_name, data_dir, steps, batches):
    recipe = training.load_recipe(recipe_name, "cpu")
    batch_size = recipe["training"]["batch_size"]

    def dataset(**options):
        return training.make_dataset(
            recipe, "train", data_dir, batch_size=batch_size, shuffle=True, seed=0, **options
        )

    alone = {
        "pydataset": samples_per_second(pydataset_batches(dataset()), batches, batch_size),
        "tf_data": samples_per_second(dataset().as_tf_dataset(), batches, batch_size),
    }
    model = training.build_model(recipe)
    first = dataset()[0]
    model.build((None,) + first[0][0].shape[1:])
    model.compile(optimizer=training.make_optimizer(recipe["training"]))
    model.fit(RepeatedBatch(first, 1), epochs=1, verbose=0)  # traces and compiles
    feeds = {
        "in_memory": lambda: RepeatedBatch(first, steps),
        "generator": lambda: pydataset_batches(dataset()),  # as keras_msrnn.training feeds fit
        "pydataset_1_worker": lambda: dataset(),
        "pydataset_2_threads": lambda: dataset(workers=2),
        "pydataset_2_processes": lambda: dataset(workers=2, use_multiprocessing=True),
        "tf_data_prefetch": lambda: dataset().as_tf_dataset(),
        # Measured again last: the drift of the step itself over the run.
        "in_memory_again": lambda: RepeatedBatch(first, steps),
    }
    in_fit = {name: fit_step_s(model, make(), steps) for name, make in feeds.items()}
    return {
        "backend": keras.config.backend(),
        "recipe": recipe_name,
        "batch_size": batch_size,
        "steps": steps,
        "alone_samples_per_s": alone,
        "fit_step_s": in_fit,
        "data_wait_s": {
            name: round(value - in_fit["in_memory"], 4)
            for name, value in in_fit.items()
            if name != "in_memory"
        },
    }


def measure_alone(dataset_name, data_dir, batch_size, batches):
    def dataset():
        return get_dataset(
            dataset_name, "train", data_dir=data_dir, batch_size=batch_size, shuffle=True, seed=0
        )

    count = min(batches, len(dataset()) - 1)
    return {
        "backend": keras.config.backend(),
        "dataset": dataset_name,
        "batch_size": batch_size,
        "batches": count,
        "alone_samples_per_s": {
            "pydataset": samples_per_second(pydataset_batches(dataset()), count, batch_size),
            "tf_data": samples_per_second(dataset().as_tf_dataset(), count, batch_size),
        },
    }


FEEDS = (
    "generator",
    "pydataset_1_worker",
    "pydataset_2_threads",
    "pydataset_2_processes",
    "tf_data_prefetch",
)


def table(paths):
    rows = [
        "| backend | alone: PyDataset / tf.data (samples/s) | in-memory step (s) | "
        "step minus in-memory (s): "
        "generator / 1 worker / 2 threads / 2 processes / tf.data |",
        "|---|---|---|---|",
    ]
    for path in paths:
        with open(path) as file:
            for line in file:
                report = json.loads(line)
                if "data_wait_s" not in report:  # a --dataset run: alone only
                    continue
                alone, wait = report["alone_samples_per_s"], report["data_wait_s"]
                rows.append(
                    f"| {report['backend']} | {alone['pydataset']:.0f} / {alone['tf_data']:.0f} | "
                    f"{report['fit_step_s']['in_memory']:.3f} | "
                    + " / ".join(f"{wait[name]:+.3f}" if name in wait else "-" for name in FEEDS)
                    + " |"
                )
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="ms-convlstm-mnist")
    parser.add_argument("--data-dir", default=str(DATA_DIR / "mnist"))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--dataset", help="measure only this data set alone")
    parser.add_argument("--output")
    parser.add_argument("--table", nargs="+", metavar="FILE")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.dataset:
        batch_size = training.load_recipe(args.recipe, "cpu")["training"]["batch_size"]
        report = measure_alone(args.dataset, args.data_dir, batch_size, args.batches)
    else:
        report = measure(args.recipe, args.data_dir, args.steps, args.batches)
    print(json.dumps(report))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "a") as file:
            file.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
