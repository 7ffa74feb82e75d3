"""Pretrained presets: local folders, the Hugging Face Hub, built-in names."""

from keras_msrnn.presets.preset_utils import (
    FORMAT_VERSION,
    PresetError,
    from_preset,
    list_presets,
    publish_zoo,
    resolve_preset,
    save_to_preset,
    upload_preset,
)

__all__ = [
    "FORMAT_VERSION",
    "PresetError",
    "from_preset",
    "list_presets",
    "publish_zoo",
    "resolve_preset",
    "save_to_preset",
    "upload_preset",
]
