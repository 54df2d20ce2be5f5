"""Image and mask file I/O (numpy + Pillow only).

Inspection lines produce grayscale, 16-bit and occasionally RGBA images; this module reads them
into plain numpy arrays without silently narrowing 16-bit data to 8 bits, and turns every Pillow
failure into a :class:`DataError` that names the file, because "cannot identify image file" with
no path is the most common dead end when a dataset of thousands of files has one bad one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Pillow modes that already map 1:1 onto the arrays we promise.
_DIRECT_MODES = {"L", "RGB", "RGBA"}
_UINT16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
# Colour spaces Pillow can convert to RGB without loss of meaning.
_TO_RGB_MODES = {"CMYK", "YCbCr", "LAB", "HSV", "RGBX"}


class DataError(ValueError):
    """A dataset file or layout is unusable; the message names the file and what was wrong."""


def list_images(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name. With ``root`` (a dataset's folder), each must
    resolve (links included) to a place inside it, or the listing is a DataError naming it.

    Hidden files (leading dot, e.g. our own atomic-write temporaries) are skipped so that a
    half-written file is never picked up as data. The containment rule is the one bundles and COCO
    file names follow: a link inside a dataset someone else made must not read files from elsewhere. A
    folder the user points at directly (inspect's frames, distill's images) is listed without it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory (expected a folder of images)")
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if root is None:
        return files
    base = Path(root).resolve()
    for p in files:
        if not p.resolve().is_relative_to(base):
            raise DataError(f"{p}: leads to {p.resolve()}, outside {base}; a dataset's files must lie inside "
                            "it (copy the file in instead of linking to it)")
    return files


def _open_loaded(path: Path) -> Image.Image:
    """Open and fully decode ``path`` so truncation errors surface here, not later."""
    try:
        im = Image.open(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path}: is a directory, expected an image file") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large for Pillow's decompression-bomb limit ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"{path}: unreadable image (not a recognised image format)") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc})") from exc
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated/corrupt pixel data as OSError ("image file is truncated") or
        # SyntaxError (broken PNG chunks).
        im.close()
        raise DataError(f"{path}: unreadable or truncated image ({exc})") from exc
    return im


def _int32_to_uint16(arr: np.ndarray, path: Path) -> np.ndarray:
    """Pillow's mode "I" (int32) holds 16-bit PNG/TIFF data on some versions; narrow safely."""
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise DataError(
            f"{path}: 32-bit integer image with values in [{arr.min()}, {arr.max()}]; "
            "expected 8- or 16-bit data (0..65535)"
        )
    return arr.astype(np.uint16)


def _image_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in _DIRECT_MODES:
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in _UINT16_MODES:
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        return _int32_to_uint16(np.asarray(im), path)
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()
    if mode == "LA":
        # Grayscale with alpha: the alpha channel carries no inspection signal.
        return np.asarray(im.getchannel("L"), dtype=np.uint8).copy()
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8).copy()
    if mode in _TO_RGB_MODES:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    raise DataError(
        f"{path}: unsupported image mode {mode!r}; expected 8-bit gray/RGB/RGBA or 16-bit gray "
        "(float images must be converted to 16-bit integers first)"
    )


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as HxW (gray), HxWx3 or HxWx4, dtype uint8 or uint16.

    16-bit grayscale PNG/TIFF stays uint16 (no silent scaling to 8 bits); palette images become
    RGB(A); EXIF orientation is NOT applied, because masks are stored in raw pixel order too.
    Pillow has no 16-bit colour mode: 48-bit RGB files arrive as 8-bit RGB.
    Raises :class:`DataError` naming the file when it is missing, unreadable, truncated or of an
    unsupported mode.
    """
    path = Path(path)
    im = _open_loaded(path)
    try:
        return _image_array(im, path)
    finally:
        im.close()


def _mask_array(im: Image.Image, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("L", "P"):
        # "P": palette PNGs (VOC style) store instance ids as palette indices.
        return np.asarray(im, dtype=np.uint8).copy()
    if mode == "1":
        return np.asarray(im, dtype=bool).astype(np.uint8) * np.uint8(255)
    if mode in _UINT16_MODES:
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        return _int32_to_uint16(np.asarray(im), path)
    if mode == "LA":
        return np.asarray(im.getchannel("L"), dtype=np.uint8).copy()
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(im, dtype=np.uint8)[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].copy()
        raise DataError(
            f"{path}: colour mask (mode {mode}) with differing channels; expected a single-channel "
            "label image (binary 0/255 or instance ids)"
        )
    raise DataError(f"{path}: unsupported mask mode {mode!r}; expected 8- or 16-bit single channel")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask as a 2-D uint8/uint16 label image, values as stored.

    Mode "1" masks become 0/255; gray-looking RGB masks (R == G == B) are accepted, true colour
    masks are rejected because their colour-to-object mapping is not defined here.
    """
    path = Path(path)
    im = _open_loaded(path)
    try:
        return _mask_array(im, path)
    finally:
        im.close()


def _to_pil(array: np.ndarray) -> Image.Image:
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype == np.uint16 and arr.ndim == 2:
        return Image.fromarray(arr)  # Pillow >= 10 maps 2-D uint16 to mode "I;16"
    if arr.dtype != np.uint8:
        raise ValueError(f"cannot write array of dtype {arr.dtype}; expected uint8, uint16 (2-D) or bool")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        return Image.fromarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return Image.fromarray(arr[..., 0])
    raise ValueError(f"cannot write array of shape {arr.shape}; expected HxW, HxWx3 or HxWx4")


def write_image_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` so readers never see a partial file.

    The image is encoded to a hidden temporary file in the same folder (same filesystem) and moved
    into place with ``os.replace``, which is atomic on POSIX and Windows. Parent folders are
    created. The format follows the extension (.png, .jpg, .bmp, .tif ...).
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    im = _to_pil(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 honours the umask (tempfile.mkstemp would leave the file 0600,
    # unreadable to line software running under another account).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            im.save(fh, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
