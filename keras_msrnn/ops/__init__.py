"""Backend-agnostic building blocks that Keras core lacks."""

from keras_msrnn.ops.local_attention import local_attention, local_attention_scores
from keras_msrnn.ops.patching import patch_frames, unpatch_frames
from keras_msrnn.ops.resampling import downsample, rescale, upsample
from keras_msrnn.ops.warp import warp

__all__ = [
    "downsample",
    "local_attention",
    "local_attention_scores",
    "patch_frames",
    "rescale",
    "unpatch_frames",
    "upsample",
    "warp",
]
