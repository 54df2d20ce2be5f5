"""Joint image + mask augmentation for inspection images (numpy + Pillow).

Geometric operations move the image and every object mask together (bilinear for the image,
nearest for masks, so masks stay crisp and boolean); photometric operations touch the image only.
Every operation works on uint8 and uint16 images alike and returns the input dtype and shape:
line images are often 16-bit, and a pipeline that quietly turns them into 8-bit floats is a
classic source of train/deploy mismatch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from PIL import Image, ImageFilter

from edgesam.utils.config import Config


@dataclass
class AugmentConfig(Config):
    """Probabilities and ranges of each augmentation; ``enabled=False`` makes it the identity.

    Ranges: ``rotate_deg`` is the max absolute small rotation, ``scale`` the (min, max) zoom,
    ``brightness`` a shift as a fraction of the full intensity range, ``contrast`` and ``gamma`` the
    max relative change (factor in [1 - c, 1 + c]; gamma log-uniform in [1/(1+g), 1+g]),
    ``noise_std`` the max Gaussian noise std as a fraction of the range, ``blur_radius`` the
    (min, max) Gaussian radius in pixels. ``keep_shape`` limits 90-degree rotations of non-square
    images to 180 degrees so the output shape always equals the input's.
    """

    enabled: bool = True
    hflip_p: float = 0.5
    vflip_p: float = 0.5
    rot90_p: float = 0.5
    affine_p: float = 0.5
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    photometric_p: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.2
    gamma: float = 0.2
    noise_p: float = 0.3
    noise_std: float = 0.02
    blur_p: float = 0.2
    blur_radius: tuple[float, float] = (0.3, 1.2)
    keep_shape: bool = True

    WHERE = "augment"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_p"):
                value = getattr(self, f.name)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"AugmentConfig.{f.name} must be a probability in [0, 1], got {value}")
        self.scale = tuple(float(v) for v in self.scale)
        self.blur_radius = tuple(float(v) for v in self.blur_radius)
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"AugmentConfig.scale must be (min, max) with 0 < min <= max, got {self.scale}")
        if len(self.blur_radius) != 2 or not 0 <= self.blur_radius[0] <= self.blur_radius[1]:
            raise ValueError(f"AugmentConfig.blur_radius must be (min, max) >= 0, got {self.blur_radius}")
        for name in ("rotate_deg", "brightness", "contrast", "gamma", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentConfig.{name} must be >= 0, got {getattr(self, name)}")


def _max_value(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise ValueError(f"image dtype must be uint8 or uint16, got {dtype}")


def _to_dtype(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.clip(np.rint(x), 0, _max_value(dtype)).astype(dtype)


# --------------------------------------------------------------------------- geometric
def _affine_coeffs(w: int, h: int, angle_deg: float, scale: float) -> tuple:
    """PIL's inverse map (output -> input) for a rotation + scale about the image centre."""
    t = math.radians(angle_deg)
    a, b = math.cos(t) / scale, math.sin(t) / scale
    d, e = -math.sin(t) / scale, math.cos(t) / scale
    cx, cy = w / 2.0, h / 2.0
    return (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy)


def _affine_image(image: np.ndarray, coeffs: tuple) -> np.ndarray:
    """Bilinear warp per channel in float mode ("F"), which Pillow supports for any bit depth."""
    h, w = image.shape[:2]
    chans = image[..., None] if image.ndim == 2 else image
    out = np.empty(chans.shape, dtype=np.float32)
    for c in range(chans.shape[2]):
        ch = chans[..., c].astype(np.float32)
        warped = Image.fromarray(ch).transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR,
                              fillcolor=float(ch.mean()))
        out[..., c] = np.asarray(warped)
    return _to_dtype(out if image.ndim == 3 else out[..., 0], image.dtype)


def _affine_masks(masks: np.ndarray, coeffs: tuple) -> np.ndarray:
    k, h, w = masks.shape
    out = np.zeros_like(masks)
    for i in range(k):
        im = Image.fromarray(masks[i].astype(np.uint8) * np.uint8(255))
        warped = im.transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.NEAREST, fillcolor=0)
        out[i] = np.asarray(warped) > 127
    return out


# --------------------------------------------------------------------------- photometric
def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def _blur_numpy(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (reflect border) for dtypes Pillow's filter does not take (uint16)."""
    k = _gaussian_kernel(sigma)
    r = k.size // 2
    x = image.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(k.size))
    return _to_dtype(x, image.dtype)


def _blur(image: np.ndarray, radius: float) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    return _blur_numpy(image, radius)


class Augmenter:
    """Applies :class:`AugmentConfig` jointly to an image and its object masks.

    ``augmenter(image, masks, rng)`` returns ``(image, masks)``: image with the same dtype (and,
    with ``keep_shape``, the same shape), masks bool [K', H, W] where objects pushed out of the
    frame are dropped. The result is a pure function of the inputs and the rng state; without an
    rng, the augmenter's own generator (seeded by ``seed``) is used.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0) -> None:
        self.config = config if config is not None else AugmentConfig()
        self.rng = np.random.default_rng(seed)

    def __call__(self, image: np.ndarray, masks: np.ndarray, rng: np.random.Generator | None = None):
        image, masks = self._validate(image, masks)
        cfg = self.config
        if not cfg.enabled:
            return image.copy(), masks.copy()
        rng = self.rng if rng is None else rng
        image, masks = self._geometric(image, masks, rng)
        image = self._photometric(image, rng)
        keep = masks.any(axis=(1, 2))
        return image, masks[keep]

    @staticmethod
    def _validate(image: np.ndarray, masks: np.ndarray):
        image = np.asarray(image)
        _max_value(image.dtype)
        if image.ndim not in (2, 3):
            raise ValueError(f"image must be HxW or HxWxC, got shape {image.shape}")
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
            raise ValueError(f"masks must be [K,H,W] with H,W = {image.shape[:2]}, got shape {masks.shape}")
        return image, masks

    def _geometric(self, image, masks, rng):
        cfg = self.config
        if rng.random() < cfg.hflip_p:
            image, masks = image[:, ::-1], masks[:, :, ::-1]
        if rng.random() < cfg.vflip_p:
            image, masks = image[::-1], masks[:, ::-1]
        if rng.random() < cfg.rot90_p:
            square = image.shape[0] == image.shape[1]
            k = int(rng.integers(1, 4)) if (square or not cfg.keep_shape) else 2
            image, masks = np.rot90(image, k, axes=(0, 1)), np.rot90(masks, k, axes=(1, 2))
        image, masks = np.ascontiguousarray(image), np.ascontiguousarray(masks)
        if rng.random() < cfg.affine_p:
            angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
            scale = rng.uniform(*cfg.scale)
            coeffs = _affine_coeffs(image.shape[1], image.shape[0], angle, scale)
            image, masks = _affine_image(image, coeffs), _affine_masks(masks, coeffs)
        return image, masks

    def _photometric(self, image, rng):
        cfg = self.config
        if rng.random() < cfg.blur_p:
            image = _blur(image, rng.uniform(*cfg.blur_radius))
        do_tone = rng.random() < cfg.photometric_p
        do_noise = rng.random() < cfg.noise_p
        if not (do_tone or do_noise):
            return image
        vmax = _max_value(image.dtype)
        x = image.astype(np.float32) / vmax
        has_alpha = x.ndim == 3 and x.shape[2] == 4
        colour = x[..., :3] if has_alpha else x  # never touch alpha
        if do_tone:
            gamma = math.exp(rng.uniform(-math.log1p(cfg.gamma), math.log1p(cfg.gamma)))
            contrast = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
            shift = rng.uniform(-cfg.brightness, cfg.brightness)
            colour = np.clip(colour, 0, 1) ** gamma
            colour = (colour - colour.mean()) * contrast + colour.mean() + shift
        if do_noise:
            colour = colour + rng.normal(0.0, rng.uniform(0, cfg.noise_std), colour.shape).astype(np.float32)
        x = np.concatenate([colour, x[..., 3:]], axis=2) if has_alpha else colour
        return _to_dtype(x * vmax, image.dtype)
