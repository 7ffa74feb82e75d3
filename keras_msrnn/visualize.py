"""Reading frames from common files and writing forecasts as GIF and PNG."""

import os
import zipfile

import numpy as np

from keras_msrnn.frames import to_unit_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError("Reading and writing images needs Pillow: pip install pillow.") from None
    return Image


def load_frames(path, channels=None):
    """Frames `(T, H, W, C)` float32 in `[0, 1]` from .npy, .npz, a GIF or a PNG folder.

    Array values follow `keras_msrnn.frames.to_unit_frames` (uint8 is
    0..255; float frames must be finite and in `[0, 1]`). An .npz uses its
    `frames` array (else its first array). `channels=1` turns colour images
    into luminance. Every unreadable or unusable input raises one
    `ValueError` that names the file.
    """
    if not os.path.exists(path):
        raise ValueError(f"Input {path!r} does not exist.")
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise ValueError(f"Folder {path!r} holds no {'/'.join(IMAGE_SUFFIXES)} images.")
        frames = np.stack([_read_image(os.path.join(path, n), channels) for n in names])
    elif path.lower().endswith(".gif"):
        frames = _read_gif(path, channels)
    elif path.lower().endswith((".npy", ".npz")):
        frames = to_unit_frames(_read_array(path), repr(path))
        if frames.ndim == 3:
            frames = frames[..., None]
    else:
        raise ValueError(f"Unsupported input {path!r}: use .npy, .npz, .gif or a folder of PNGs.")
    if frames.ndim != 4:
        raise ValueError(
            f"{path!r} must hold frames (time, height, width[, channels]); found shape "
            f"{frames.shape}."
        )
    return frames


def _read_array(path):
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if not data.files:
                    raise ValueError("it holds no arrays")
                return data["frames"] if "frames" in data.files else data[data.files[0]]
        return data
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{path!r} is not a readable numpy file ({error or type(error).__name__})."
        ) from None


def _read_image(path, channels):
    Image = _pil()
    try:
        with Image.open(path) as image:
            return _image_array(image, channels)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path!r} is not a readable image ({error}).") from None


def _read_gif(path, channels):
    Image = _pil()
    try:
        with Image.open(path) as image:
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(_image_array(image, channels))
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path!r} is not a readable GIF ({error}).") from None
    return np.stack(frames)


def _image_array(image, channels):
    mode = "L" if channels == 1 else "RGB"
    array = np.asarray(image.convert(mode))
    return to_unit_frames(array if array.ndim == 3 else array[..., None])


def _to_uint8(frames):
    frames = np.clip(np.asarray(frames, np.float32), 0, 1)
    frames = (frames * 255 + 0.5).astype(np.uint8)
    return frames[..., 0] if frames.shape[-1] == 1 else frames


def _upscale(frames, factor):
    return frames.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else frames


def _scale_for(height):
    return max(1, 128 // height)


def save_strip(path, context, forecast, truth=None):
    """A PNG with rows context, truth (when known) and forecast."""
    Image = _pil()
    scale = _scale_for(context.shape[1])
    width = max(len(context), len(forecast))
    rows = [context] + ([truth] if truth is not None else []) + [forecast]
    height, frame_width = context.shape[1] * scale, context.shape[2] * scale
    gap = 2
    canvas = np.full(
        (len(rows) * (height + gap), width * (frame_width + gap)) + _to_uint8(context).shape[3:],
        255,
        np.uint8,
    )
    for row, frames in enumerate(rows):
        for column, frame in enumerate(_upscale(_to_uint8(frames), scale)):
            top, left = row * (height + gap), column * (frame_width + gap)
            canvas[top : top + height, left : left + frame_width] = frame
    Image.fromarray(canvas).save(path)
    return path


def save_gif(path, context, forecast, truth=None, duration_ms=200):
    """An animated GIF: context then forecast; with truth, side by side."""
    Image = _pil()
    scale = _scale_for(context.shape[1])
    left = np.concatenate([context, truth if truth is not None else forecast])
    right = np.concatenate([context, forecast]) if truth is not None else None
    frames = _upscale(_to_uint8(left), scale)
    if right is not None:
        separator = np.full(frames.shape[:2] + (2,) + frames.shape[3:], 255, np.uint8)
        frames = np.concatenate([frames, separator, _upscale(_to_uint8(right), scale)], axis=2)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path
