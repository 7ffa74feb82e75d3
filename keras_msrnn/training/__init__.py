"""Training from recipes: resumable, time-boxed `fit` runs and preset export."""

from keras_msrnn.training.checkpoint import CheckpointError
from keras_msrnn.training.export import export_preset
from keras_msrnn.training.recipes import build_model, load_recipe, make_dataset, make_optimizer
from keras_msrnn.training.run import TrainingResult, read_training_state, train

__all__ = [
    "CheckpointError",
    "TrainingResult",
    "build_model",
    "export_preset",
    "load_recipe",
    "make_dataset",
    "make_optimizer",
    "read_training_state",
    "train",
]
