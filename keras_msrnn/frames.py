"""The rules every frame passes before a model sees it.

Models work on float frames in `[0, 1]`. `to_unit_frames` turns what users
and data sets hold into that, or refuses it with one line that says what is
wrong and how to convert it:

- `uint8`: intensities 0..255, divided by 255;
- other integer types and `bool`: intensities 0..255 too (`bool` as 0 or
  1); a value outside 0..255 is refused (rescale such data to `[0, 1]`
  floats yourself: there is no single right way for 12- or 16-bit data);
- floats: must be finite and within `[0, 1]`; values up to 1e-6 outside are
  rounding and are clipped. Float frames holding 0..255 are refused with the
  hint to divide by 255; anything else outside `[0, 1]` is refused;
- empty arrays are refused.

The command line (`keras-msrnn predict`), `MSStack.forecast`,
`keras_msrnn.evaluate` and the data sets all apply these rules.
"""

from __future__ import annotations

import numpy as np

ROUNDING = 1e-6


def to_unit_frames(frames, source: str = "frames") -> np.ndarray:
    """Frames as float32 in `[0, 1]`, by the rules of this module.

    Args:
        frames: array-like of any shape.
        source: what to call the frames in an error (e.g. a file name).

    Returns:
        A float32 numpy array of the same shape.

    Raises:
        ValueError: one line naming `source` and the problem.
    """
    array = np.asarray(frames)
    if array.size == 0:
        raise ValueError(f"{source} holds no frames (shape {array.shape}).")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"{source}: {array.dtype} frames are read as 8-bit intensities 0..255, but they "
                "hold "
                f"{low}..{high}; rescale them to float frames in [0, 1] first."
            )
        return array.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{source}: frames must be numbers, not {array.dtype}.")
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        count = int(array.size - finite.sum())
        raise ValueError(
            f"{source} holds {count} NaN or infinite value(s), the first at index "
            f"{tuple(int(i) for i in bad)}."
        )
    low, high = float(array.min()), float(array.max())
    if low < -ROUNDING or high > 1 + ROUNDING:
        hint = "divide by 255" if low >= 0 and high <= 255 else "rescale them"
        raise ValueError(
            f"{source}: float frames must lie in [0, 1], but they hold {low:.4g}..{high:.4g}; "
            f"{hint} "
            "(or pass uint8 frames)."
        )
    return np.clip(array.astype(np.float32), 0.0, 1.0)
