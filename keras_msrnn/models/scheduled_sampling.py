"""Scheduled-sampling schedules: when to feed true frames during training.

A schedule says, for every step `t = 0 .. S-2` of an unrolled sequence, the
probability of feeding the true frame `x[t]` rather than the model's own
previous prediction. `MSStack` draws one Bernoulli mask per (sample, step)
from these probabilities inside the graph, so training needs no callback and
never reads the optimizer.

A probability that is the Python number 1.0 or 0.0 is a static choice: the
stack then skips the mask for that step.
"""

import keras
from keras import ops

from keras_msrnn.api_export import keras_msrnn_export
from keras_msrnn.validation import positive_int


class SamplingSchedule:
    """Base class of scheduled-sampling schedules.

    Subclasses implement `feed_probabilities(step, input_length,
    output_length)` returning a list of `input_length + output_length - 1`
    entries (Python floats or scalar tensors); entry 0 must be 1.0 because the
    first step has no previous prediction.
    """

    def feed_probabilities(self, step, input_length, output_length):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras_msrnn_export
class LinearSampling(SamplingSchedule):
    """Linear scheduled sampling (PredRNN, MS-RNN).

    The context frames are always true. During the forecast, the true frame is
    fed with probability `eta = max(0, 1 - step / decay_steps)`, where `step`
    counts training iterations; `eta` falls linearly from 1 to 0 over
    `decay_steps` iterations. The MS-RNN code decays over the whole run
    (epochs x iterations per epoch).

    Args:
        decay_steps: int. Training iterations over which `eta` reaches 0.

    Reference:
     - [Bengio et al., 2015](https://arxiv.org/abs/1506.03099)
    """

    def __init__(self, decay_steps=10000):
        self.decay_steps = positive_int("decay_steps", decay_steps)

    def eta(self, step):
        """Probability of feeding the true frame during the forecast at `step`."""
        progress = ops.cast(step, "float32") / float(self.decay_steps)
        return ops.maximum(1.0 - progress, 0.0)

    def feed_probabilities(self, step, input_length, output_length):
        eta = self.eta(step)
        return [1.0] * input_length + [eta] * (output_length - 1)

    def get_config(self):
        return {"decay_steps": self.decay_steps}


@keras_msrnn_export
class TeacherForcing(SamplingSchedule):
    """Always feeds the true frame during training (scheduled sampling off)."""

    def feed_probabilities(self, step, input_length, output_length):
        return [1.0] * (input_length + output_length - 1)


@keras_msrnn_export
class FreeRunning(SamplingSchedule):
    """Trains as the model is tested: forecasts feed their own predictions."""

    def feed_probabilities(self, step, input_length, output_length):
        return [1.0] * input_length + [0.0] * (output_length - 1)


def _reverse_probabilities(progress, start, end, exp_scale, input_length, output_length):
    """PredRNN-V2's reverse schedule at `progress` (in iterations or epochs).

    Context frames after the first are fed true with probability
    0.5 -> 1 (exponentially), forecast frames with 0.5 -> 0 (linearly), both
    changing between `start` and `end`.
    """
    progress = ops.cast(progress, "float32")
    before, after = progress < start, progress >= end
    context_eta = ops.where(
        before, 0.5, ops.where(after, 1.0, 1.0 - 0.5 * ops.exp(-(progress - start) / exp_scale))
    )
    forecast_eta = ops.where(
        before, 0.5, ops.where(after, 0.0, 0.5 - 0.5 * (progress - start) / (end - start))
    )
    return [1.0] + [context_eta] * (input_length - 1) + [forecast_eta] * (output_length - 1)


@keras_msrnn_export
class ReverseSampling(SamplingSchedule):
    """Reverse scheduled sampling per iteration, as in the PredRNN-V2 paper.

    From the second context frame on, the true frame is fed with probability
    `r_eta`, and during the forecast with probability `eta`:
    both are 0.5 before `start_step`; between `start_step` and `end_step`,
    `r_eta = 1 - 0.5 exp(-(step - start_step) / exp_alpha)` and `eta` falls
    linearly to 0; after `end_step`, `r_eta = 1` and `eta = 0`.

    Args:
        start_step: int. `r_sampling_step_1` (PredRNN-V2: 25000).
        end_step: int. `r_sampling_step_2` (PredRNN-V2: 50000).
        exp_alpha: float. `r_exp_alpha` (PredRNN-V2: 5000; 2500 for MNIST).

    Reference:
     - [Wang et al., PredRNN, TPAMI 2022](https://arxiv.org/abs/2103.09504)
    """

    def __init__(self, start_step=25000, end_step=50000, exp_alpha=5000.0):
        if not 0 <= start_step < end_step or exp_alpha <= 0:
            raise ValueError(
                "ReverseSampling needs 0 <= start_step < end_step and exp_alpha > 0. "
                f"Received: start_step={start_step}, end_step={end_step}, exp_alpha={exp_alpha}"
            )
        self.start_step = start_step
        self.end_step = end_step
        self.exp_alpha = float(exp_alpha)

    def feed_probabilities(self, step, input_length, output_length):
        return _reverse_probabilities(
            step, self.start_step, self.end_step, self.exp_alpha, input_length, output_length
        )

    def get_config(self):
        return {
            "start_step": self.start_step,
            "end_step": self.end_step,
            "exp_alpha": self.exp_alpha,
        }


@keras_msrnn_export
class EpochReverseSampling(SamplingSchedule):
    """Reverse scheduled sampling per epoch, as in the MS-RNN code.

    The rule of `ReverseSampling`, counted in 1-indexed epochs
    (`step // steps_per_epoch + 1`) with `start = epochs / 3`,
    `end = 2 epochs / 3` and `exp_alpha = start / 5`. After the last epoch
    it feeds as at test time.

    Args:
        epochs: int. Epochs of the whole run.
        steps_per_epoch: int. Training iterations per epoch.

    Reference:
     - [Ma et al., MS-RNN](https://arxiv.org/abs/2206.03010), `train_and_test.py`.
    """

    def __init__(self, epochs, steps_per_epoch):
        self.epochs = positive_int("epochs", epochs)
        self.steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)

    def feed_probabilities(self, step, input_length, output_length):
        epoch = ops.floor_divide(ops.cast(step, "int32"), self.steps_per_epoch) + 1
        start = self.epochs / 3
        return _reverse_probabilities(
            epoch, start, 2 * self.epochs / 3, start / 5, input_length, output_length
        )

    def get_config(self):
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch}


_SCHEDULES = {
    "linear": LinearSampling,
    "teacher_forcing": TeacherForcing,
    "free_running": FreeRunning,
}


_SCHEDULE_CLASSES = {
    cls.__name__: cls
    for cls in (LinearSampling, TeacherForcing, FreeRunning, ReverseSampling, EpochReverseSampling)
}


def get_schedule(identifier):
    """Turns a name, config dict or schedule into a `SamplingSchedule`."""
    if isinstance(identifier, SamplingSchedule):
        return identifier
    if isinstance(identifier, str) and identifier in _SCHEDULES:
        return _SCHEDULES[identifier]()
    if isinstance(identifier, dict):
        # Recipes may name a schedule by its bare class name.
        schedule = keras.saving.deserialize_keras_object(
            identifier, custom_objects=_SCHEDULE_CLASSES
        )
        if isinstance(schedule, SamplingSchedule):
            return schedule
    raise ValueError(
        f"Unknown sampling schedule {identifier!r}. Pass a SamplingSchedule "
        f"or one of: {', '.join(sorted(_SCHEDULES))}."
    )
