"""Video in and out for predict: frames from a file OpenCV can decode or from a camera, and an annotated copy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.core.files import commit, partial_path


def camera_index(source: str) -> int | None:
    """``input=0``: a camera index, unless a file of that name exists."""
    return int(source) if source.isdigit() and not Path(source).exists() else None


def is_video(path: Path) -> bool:
    """OpenCV decodes it as a video (any container and codec its FFmpeg build reads)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return capture.isOpened() and capture.read()[0]
    finally:
        capture.release()


class VideoSource:
    """The frames of a video file or a camera, with their time in seconds: a file's frame index over its frame rate,
    a camera's wall-clock time since the first frame."""

    def __init__(self, source: Path | int, fallback_fps: float) -> None:
        self.source, self.camera = source, isinstance(source, int)
        self.capture = cv2.VideoCapture(source if self.camera else str(source))
        if not self.capture.isOpened():
            raise FileNotFoundError(
                f"input={source}: "
                + ("no camera with that index" if self.camera else "OpenCV cannot open it as a video")
            )
        reported = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = reported if reported and 0 < reported < 1000 else fallback_fps
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 and not self.camera else None
        self.name = f"camera{source}" if self.camera else Path(source).stem

    def frames(self, max_frames: int | None) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, time, BGR frame) until the video ends or ``max_frames``."""
        start, index = time.monotonic(), 0
        try:
            while max_frames is None or index < max_frames:
                ok, frame = self.capture.read()
                if not ok:
                    return
                yield index, (time.monotonic() - start if self.camera else index / self.fps), frame
                index += 1
        finally:
            self.capture.release()


class VideoWriter:
    """An annotated video written frame by frame beside its final name, synced and renamed there when complete
    (core/files.py: a stopped run leaves no half-written file under the final name)."""

    def __init__(self, path: Path, codec: str, fps: float) -> None:
        self.path, self.codec, self.fps = path, codec, fps
        self.partial = partial_path(path)  # with the path's suffix: it picks the container
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(
                str(self.partial), cv2.VideoWriter_fourcc(*self.codec), self.fps, (width, height)
            )
            if not self.writer.isOpened():
                raise ValueError(
                    f"predict.video_codec={self.codec} with predict.video_format={self.path.suffix[1:]}: "
                    "this OpenCV build cannot write it (try mp4v with mp4, or MJPG with avi)"
                )
        self.writer.write(frame)

    def close(self) -> Path | None:
        """The final path, or None when no frame was written."""
        if self.writer is None:
            return None
        self.writer.release()
        commit(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self.partial.unlink(missing_ok=True)
