"""Models, training schedules and losses."""

from keras_msrnn.models.losses import MSRNNLoss, frame_mae, frame_mse, msrnn_loss
from keras_msrnn.models.ms_stack import MSRNN_SCALES, MSStack
from keras_msrnn.models.scheduled_sampling import (
    EpochReverseSampling,
    FreeRunning,
    LinearSampling,
    ReverseSampling,
    SamplingSchedule,
    TeacherForcing,
)

__all__ = [
    "EpochReverseSampling",
    "FreeRunning",
    "LinearSampling",
    "MSRNNLoss",
    "MSRNN_SCALES",
    "MSStack",
    "ReverseSampling",
    "SamplingSchedule",
    "TeacherForcing",
    "frame_mae",
    "frame_mse",
    "msrnn_loss",
]
