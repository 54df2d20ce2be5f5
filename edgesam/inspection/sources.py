"""Frame sources: a folder of images, a video file, or a camera (OpenCV's VideoCapture for the last two).

Each yields `Frame`s in order; a frame that cannot be read comes as a `Frame` with `error` set and no image,
so the stream logs it and goes on. A source that cannot be opened at all raises `ValueError` naming it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgesam.data.io import DataError, list_images, read_image
from edgesam_runtime.timing import ms_since

# OpenCV reads an index as backend preference + camera number (CAP_V4L2 200 + n, CAP_MSMF 1400 + n, ...): the
# backends' constants stay below this; a longer number overflows OpenCV's C int (an internal error, not a message).
MAX_CAMERA_INDEX = 9999
MAX_FAILED_READS = 5  # consecutive failed reads of a video or camera: the stream has ended (or the camera is gone)


@dataclass
class Frame:
    index: int
    name: str  # the image's file name, or "frame<index>" of a video/camera
    image: np.ndarray | None
    read_ms: float = 0.0
    error: str | None = None
    path: Path | None = None  # the image file of a folder source


class ImageFolder:
    kind = "images"

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = list_images(folder)
        if not self.files:
            raise ValueError(f"{folder}: no images (expected .png, .jpg, .bmp or .tif files)")

    @property
    def total(self) -> int:
        return len(self.files)

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            start = time.perf_counter()
            try:
                image = read_image(path)
            except DataError as exc:
                yield Frame(index, path.name, None, ms_since(start), str(exc), path)
                continue
            yield Frame(index, path.name, image, ms_since(start), None, path)

    def close(self) -> None:
        pass


class VideoStream:
    """A video file or a camera index through `cv2.VideoCapture`; frames arrive as RGB uint8."""

    def __init__(self, target: str | int):
        self.target, self.kind = target, "camera" if isinstance(target, int) else "video"
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            what = f"camera {target}" if self.kind == "camera" else f"{target}: not a readable video"
            raise ValueError(f"{what} (OpenCV's VideoCapture could not open it)")
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)) if self.kind == "video" else 0
        self.total = count if count > 0 else None

    def frames(self) -> Iterator[Frame]:
        failed, index = 0, 0
        while failed < MAX_FAILED_READS:
            start = time.perf_counter()
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                failed += 1
                if self.total is not None and index >= self.total:
                    return  # the end of the file
                yield Frame(index, f"frame{index:06d}", None, ms_since(start), "the frame could not be read or decoded")
                index += 1
                continue
            failed = 0
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else bgr
            yield Frame(index, f"frame{index:06d}", image, ms_since(start))
            index += 1

    def close(self) -> None:
        self.capture.release()


def open_source(spec) -> ImageFolder | VideoStream:
    """A folder of images, a video file, or a camera index (a whole number, e.g. "0")."""
    text = str(spec)
    if text.isdigit():
        if int(text) > MAX_CAMERA_INDEX:
            raise ValueError(f"camera {text}: expected a camera number from 0 to {MAX_CAMERA_INDEX}")
        return VideoStream(int(text))
    path = Path(text)
    if path.is_dir():
        return ImageFolder(path)
    if path.is_file():
        return VideoStream(str(path))
    raise ValueError(f"{text}: no such folder, video file or camera index (expected a folder of images, a video "
                     "file, or a camera number such as 0)")
