"""Parameter-free resampling between the scales of a multi-scale stack."""

from keras_msrnn.backend.resample import max_pool, upsample_bilinear


def downsample(x, factor):
    """Max-pools `(B, H, W, C)` by `factor` (floor mode), as `MaxPool2d(f, f)`."""
    if factor == 1:
        return x
    return max_pool(x, factor)


def upsample(x, factor):
    """Bilinear upsampling of `(B, H, W, C)` by `factor` with half-pixel centres.

    Matches PyTorch's `Upsample(scale_factor=f, mode="bilinear")`
    (`align_corners=False`) on every backend.
    """
    if factor == 1:
        return x
    return upsample_bilinear(x, factor)


def rescale(x, from_factor, to_factor):
    """Moves `x` from the scale 1/`from_factor` to the scale 1/`to_factor`.

    Scales are down factors relative to the frame; consecutive factors of a
    stack divide one another, which `MSStack` checks.
    """
    if to_factor > from_factor:
        return downsample(x, to_factor // from_factor)
    return upsample(x, from_factor // to_factor)
