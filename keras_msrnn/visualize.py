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


FORECAST_COLOUR = (220, 40, 40)
TEXT_COLOUR = (0, 0, 0)
BACKGROUND = (255, 255, 255)
GAP = 4


def _to_rgb(frames):
    """Frames `(T, H, W, C)` in [0, 1] -> uint8 RGB `(T, H, W, 3)` (one channel: grey)."""
    frames = np.clip(np.asarray(frames, np.float32), 0, 1)
    frames = (frames * 255 + 0.5).astype(np.uint8)
    if frames.shape[-1] == 1:
        return np.repeat(frames, 3, axis=-1)
    if frames.shape[-1] == 3:
        return frames
    return np.repeat(frames[..., :1], 3, axis=-1)  # other channel counts: the first channel


def _upscale(frames, factor):
    return frames.repeat(factor, axis=1).repeat(factor, axis=2) if factor > 1 else frames


def _scale_for(height):
    return max(1, 128 // height)


def _font(size):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _frame_box(draw, left, top, width, height, colour, thickness=2):
    for offset in range(thickness):
        draw.rectangle(
            [left - 1 - offset, top - 1 - offset, left + width + offset, top + height + offset],
            outline=colour,
        )


def save_strip(path, context, forecast, truth=None):
    """A labelled PNG: rows context, truth (when known) and forecast.

    Each row is named on the left; every frame carries its frame number
    (context frames are 1..T_in, future frames continue from T_in + 1);
    the forecast row is outlined in red.
    """
    Image = _pil()
    from PIL import ImageDraw

    scale = _scale_for(context.shape[1])
    height, width = context.shape[1] * scale, context.shape[2] * scale
    first_future = len(context) + 1
    rows = [("context", context, 1)]
    if truth is not None:
        rows.append(("truth", truth, first_future))
    rows.append(("forecast", forecast, first_future))
    label_width, number_height = 80, 16
    columns = max(len(frames) for _, frames, _ in rows)
    row_height = height + number_height + GAP
    canvas = Image.new(
        "RGB",
        (label_width + columns * (width + GAP) + GAP, len(rows) * row_height + GAP),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(11)
    for row, (name, frames, first_number) in enumerate(rows):
        top = GAP + row * row_height + number_height
        colour = FORECAST_COLOUR if name == "forecast" else TEXT_COLOUR
        draw.text((6, top + height // 2), name, fill=colour, font=font, anchor="lm")
        for column, frame in enumerate(_upscale(_to_rgb(frames), scale)):
            left = label_width + column * (width + GAP)
            canvas.paste(Image.fromarray(frame), (left, top))
            draw.text(
                (left + width // 2, top - 2),
                f"t={first_number + column}",
                fill=colour,
                font=small,
                anchor="mb",
            )
            if name == "forecast":
                _frame_box(draw, left, top, width, height, FORECAST_COLOUR, thickness=1)
    canvas.save(path)
    return path


def save_gif(path, context, forecast, truth=None, duration_ms=250):
    """An animated, labelled GIF: the context, then the forecast (beside the truth when known).

    A header names each panel and gives the frame number; from the first
    forecast frame on, the forecast panel is outlined in red and its title
    reads "forecast".
    """
    Image = _pil()
    from PIL import ImageDraw

    scale = _scale_for(context.shape[1])
    height, width = context.shape[1] * scale, context.shape[2] * scale
    total = len(context) + len(forecast)
    panels = [("truth", truth)] if truth is not None else []
    panels.append(("forecast", forecast))
    header = 36
    size = (GAP + len(panels) * (width + GAP), header + height + GAP)
    font, small = _font(14), _font(12)
    context_rgb = _upscale(_to_rgb(context), scale)
    panel_frames = [(name, _upscale(_to_rgb(frames), scale)) for name, frames in panels]
    images = []
    for step in range(total):
        in_future = step >= len(context)
        canvas = Image.new("RGB", size, BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        draw.text((GAP, 2), f"frame {step + 1} of {total}", fill=TEXT_COLOUR, font=small)
        for index, (name, frames) in enumerate(panel_frames):
            left = GAP + index * (width + GAP)
            image = frames[step - len(context)] if in_future else context_rgb[step]
            title = name if in_future else "context"
            colour = FORECAST_COLOUR if in_future and name == "forecast" else TEXT_COLOUR
            draw.text((left + width // 2, header - 3), title, fill=colour, font=font, anchor="mb")
            canvas.paste(Image.fromarray(image), (left, header))
            if in_future and name == "forecast":
                _frame_box(draw, left, header, width, height, FORECAST_COLOUR)
        images.append(canvas)
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path
