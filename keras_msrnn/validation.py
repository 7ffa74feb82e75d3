"""Argument checks shared by every layer, model, schedule and data set."""

import numpy as np


def positive_int(name, value):
    """`value` as an int if it is a positive integer (not a bool), else one clear error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)
