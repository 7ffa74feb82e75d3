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
        if not isinstance(decay_steps, int) or decay_steps < 1:
            raise ValueError(
                f"`decay_steps` must be a positive int. Received: decay_steps={decay_steps!r}"
            )
        self.decay_steps = decay_steps

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


_SCHEDULES = {"linear": LinearSampling, "teacher_forcing": TeacherForcing, "free_running": FreeRunning}


def get_schedule(identifier):
    """Turns a name, config dict or schedule into a `SamplingSchedule`."""
    if isinstance(identifier, SamplingSchedule):
        return identifier
    if isinstance(identifier, str) and identifier in _SCHEDULES:
        return _SCHEDULES[identifier]()
    if isinstance(identifier, dict):
        schedule = keras.saving.deserialize_keras_object(identifier)
        if isinstance(schedule, SamplingSchedule):
            return schedule
    raise ValueError(
        f"Unknown sampling schedule {identifier!r}. Pass a SamplingSchedule "
        f"or one of: {', '.join(sorted(_SCHEDULES))}."
    )
