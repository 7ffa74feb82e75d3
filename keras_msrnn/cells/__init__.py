"""Recurrent cells, each usable alone or by name in `MSStack(cell=...)`."""

from keras_msrnn.cells.base import (
    CellOutput,
    RecurrentCell,
    available_cells,
    get_cell_class,
    register_cell,
)
from keras_msrnn.cells.convlstm import ConvLSTMCell
from keras_msrnn.cells.mim import MIMCell
from keras_msrnn.cells.motionrnn import MotionRNNCell
from keras_msrnn.cells.preciplstm import LocalAttention, PrecipLSTMCell
from keras_msrnn.cells.predrnn import PredRNNCell, PredRNNV2Cell
from keras_msrnn.cells.predrnn_pp import PredRNNPPCell
from keras_msrnn.cells.trajgru import TrajGRUCell

__all__ = [
    "CellOutput",
    "ConvLSTMCell",
    "LocalAttention",
    "MIMCell",
    "MotionRNNCell",
    "PrecipLSTMCell",
    "PredRNNCell",
    "PredRNNPPCell",
    "PredRNNV2Cell",
    "RecurrentCell",
    "TrajGRUCell",
    "available_cells",
    "get_cell_class",
    "register_cell",
]
