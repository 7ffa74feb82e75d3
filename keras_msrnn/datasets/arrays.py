"""Training windows cut from frames a user already has in memory."""

import numpy as np

from keras_msrnn.datasets.base import SequenceDataset, positive_int
from keras_msrnn.frames import to_unit_frames


class FrameWindows(SequenceDataset):
    """Sliding windows over your own frames, for fitting or fine-tuning.

    Args:
        frames: array `(time, height, width[, channels])` (one video) or
            `(videos, time, height, width, channels)`: uint8 (0..255),
            floats in `[0, 1]`, or as `keras_msrnn.frames.to_unit_frames`
            allows; anything else (NaN, out of range) is refused here.
        stride: int. Frames between the starts of consecutive windows.
        **kwargs: `SequenceDataset` arguments: `batch_size`,
            `input_length`, `output_length`, `shuffle`, `seed`.

    Example:

    ```python
    frames = np.load("my_radar.npy")             # (T, H, W)
    data = keras_msrnn.datasets.FrameWindows(frames, input_length=5,
                                             output_length=5, batch_size=4)
    model.fit(data, epochs=3)
    ```
    """

    def __init__(self, frames, stride=1, **kwargs):
        super().__init__(**kwargs)
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[..., None]
        if frames.ndim == 4:
            frames = frames[None]
        if frames.ndim != 5:
            raise ValueError(
                "`frames` must be (time, height, width[, channels]) or (videos, time, height, "
                "width, "
                f"channels). Received shape {frames.shape}."
            )
        # uint8 stays compact; everything else is checked and converted once, here.
        self.frames = (
            frames if frames.dtype == np.uint8 else to_unit_frames(frames, "FrameWindows frames")
        )
        self.stride = positive_int("stride", stride)
        starts_per_video = max(0, (self.frames.shape[1] - self.sequence_length) // self.stride + 1)
        if starts_per_video == 0:
            raise ValueError(
                f"Videos of {self.frames.shape[1]} frames are shorter than input_length + "
                "output_length "
                f"= {self.sequence_length}."
            )
        self.windows = [
            (video, start * self.stride)
            for video in range(len(self.frames))
            for start in range(starts_per_video)
        ]

    @property
    def num_sequences(self):
        return len(self.windows)

    def load_sequences(self, indices, epoch=0):
        return np.stack(
            [
                self.frames[v, s : s + self.sequence_length]
                for v, s in (self.windows[i] for i in indices)
            ]
        )
