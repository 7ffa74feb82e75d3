"""Radar units: rain rate (mm/h), reflectivity (dBZ) and the `[0, 1]` pixel scale.

The MS-RNN code stores radar frames as `pixel = clip((dBZ + 10) / 70, 0, 1)`
with `dBZ = 10 log10(Z)` and a Z-R relation `Z = a R^b`: Germany's RADOLAN
(`"dwd"`, Z = 256 R^1.42) or HKO's Marshall-Palmer (`"hko"`, Z = 58.53 R^1.56).
Data sets write frames on that scale; the metrics turn rain-rate thresholds
into it; `pixel_to_rain` turns forecasts back into mm/h.
"""

import numpy as np

DBZ_SCALE = 70.0
DBZ_OFFSET = 10.0
ZR_RELATIONS = {"dwd": (256.0, 1.42), "hko": (58.53, 1.56)}


def _relation(convention):
    if convention not in ZR_RELATIONS:
        raise ValueError(
            f"`convention` must be one of {tuple(ZR_RELATIONS)}. Received: {convention!r}"
        )
    return ZR_RELATIONS[convention]


def dbz_to_pixel(dbz):
    """Reflectivity (dBZ) -> pixel value in `[0, 1]`; NaN (no data) -> 0."""
    pixel = np.clip((np.asarray(dbz, np.float32) + DBZ_OFFSET) / DBZ_SCALE, 0, 1)
    return np.nan_to_num(pixel, nan=0.0)


def rain_to_pixel(rain_mm_h, convention="dwd"):
    """Rain rate (mm/h) -> pixel value `clip((dBZ + 10) / 70, 0, 1)`; zero rain maps to 0."""
    a, b = _relation(convention)
    rain = np.asarray(rain_mm_h, np.float64)
    with np.errstate(divide="ignore"):
        dbz = 10 * np.log10(a) + 10 * b * np.log10(rain)
    return np.where(rain > 0, np.clip((dbz + DBZ_OFFSET) / DBZ_SCALE, 0, 1), 0.0)


def pixel_to_rain(pixel, convention="dwd"):
    """Pixel value -> rain rate (mm/h), the inverse of `rain_to_pixel` where it is not clipped.

    Pixel 0 (no echo, or rain too weak to resolve) maps to 0 mm/h.
    """
    a, b = _relation(convention)
    pixel = np.asarray(pixel, np.float64)
    dbz = pixel * DBZ_SCALE - DBZ_OFFSET
    rain = (10 ** (dbz / 10) / a) ** (1 / b)
    return np.where(pixel > 0, rain, 0.0)


def describe(convention="dwd"):
    """The pixel scale in words and numbers, as radar presets store it in their metadata."""
    a, b = _relation(convention)
    return {
        "pixel": f"clip((dBZ + {DBZ_OFFSET:g}) / {DBZ_SCALE:g}, 0, 1)",
        "z_r_relation": f"Z = {a:g} R^{b:g} ({convention}), R in mm/h",
        "convention": convention,
        "to_rain_rate": f"keras_msrnn.radar_units.pixel_to_rain(pixel, {convention!r}) in mm/h",
    }
