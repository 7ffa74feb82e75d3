"""The authors' reference goldens (`shared/reference/msrnn`) and how to load them."""

import json

import numpy as np

from keras_msrnn.convert import from_msrnn

# golden file -> (cell, multi-scale)
REFERENCE_MODELS = {
    "convlstm": ("convlstm", False),
    "ms_convlstm": ("convlstm", True),
    "predrnn": ("predrnn", False),
    "ms_predrnn": ("predrnn", True),
    "predrnn_pp": ("predrnn++", False),
    "ms_predrnn_pp": ("predrnn++", True),
    "mim": ("mim", False),
    "ms_mim": ("mim", True),
    "predrnn_v2": ("predrnn_v2", False),
    "ms_predrnn_v2": ("predrnn_v2", True),
    "trajgru": ("trajgru", False),
    "ms_trajgru": ("trajgru", True),
    "preciplstm": ("preciplstm", False),
    "ms_preciplstm": ("preciplstm", True),
    "motionrnn": ("motionrnn", False),
    "ms_motionrnn": ("motionrnn", True),
}

# Options that reproduce reference quirks (msrnn_reference.md 10.1) for parity.
REFERENCE_OPTIONS = {"motionrnn": {"reference_quirks": True}}


class Reference:
    def __init__(self, directory, name):
        self.name = name
        self.arrays = np.load(directory / f"{name}.npz")
        self.meta = json.load(open(directory / f"{name}.json"))
        self.config = self.meta["config"]
        self.state_dict = {
            k[len("param/") :]: self.arrays[k] for k in self.arrays if k.startswith("param/")
        }
        self.cell, self.multi_scale = REFERENCE_MODELS[name]

    def __getitem__(self, key):
        return self.arrays[key]

    @property
    def steps(self):
        return self.config["seq_len_S"] - 1

    @property
    def decoupling_weight(self):
        return self.config["decouple_loss_weight"] or 0.0

    def model(self, **kwargs):
        return from_msrnn(
            self.state_dict,
            cell=self.cell,
            multi_scale=self.multi_scale,
            frame_shape=(self.config["height"], self.config["width"]),
            input_length=self.config["in_len"],
            output_length=self.config["out_len"],
            cell_config=REFERENCE_OPTIONS.get(self.cell),
            **kwargs,
        )
