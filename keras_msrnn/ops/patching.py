"""Space-to-depth patching of frame sequences (PredRNN / OpenSTL `reshape_patch`)."""

from keras import ops


def patch_frames(frames, patch_size):
    """Folds `p x p` pixel blocks into channels.

    `(B, T, H, W, C) -> (B, T, H/p, W/p, p*p*C)` with the channel order of
    PredRNN's `reshape_patch`: row offset, then column offset, then channel.

    Args:
        frames: tensor `(batch, time, height, width, channels)`; height and
            width divisible by `patch_size`.
        patch_size: int, the block size `p`.
    """
    if patch_size == 1:
        return frames
    _, time, height, width, channels = frames.shape
    p = patch_size
    x = ops.reshape(frames, (-1, time, height // p, p, width // p, p, channels))
    x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
    return ops.reshape(x, (-1, time, height // p, width // p, p * p * channels))


def unpatch_frames(patches, patch_size):
    """Inverse of `patch_frames`: `(B, T, h, w, p*p*C) -> (B, T, h*p, w*p, C)`."""
    if patch_size == 1:
        return patches
    _, time, height, width, depth = patches.shape
    p = patch_size
    channels = depth // (p * p)
    x = ops.reshape(patches, (-1, time, height, width, p, p, channels))
    x = ops.transpose(x, (0, 1, 2, 4, 3, 5, 6))
    return ops.reshape(x, (-1, time, height * p, width * p, channels))
