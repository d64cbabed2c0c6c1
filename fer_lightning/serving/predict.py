"""python -m fer_lightning.predict: the emotions of the faces in new images or videos, as tables and annotated copies.

Faces go through fer_lightning.EmotionRecognizer (the Python API), which uses exactly what eval uses: the checkpoint's
own transform (image_size, mean, std), the same Dataset and the same batched, autocast-matched forward pass; so on
FER-2013's own 48x48 files with ``predict.detect_faces=false`` the labels are eval's labels.
"""

from __future__ import annotations

import logging
import signal
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.errors import UserInputError
from fer_lightning.core.files import write_atomically, write_csv, write_json
from fer_lightning.data.readers import IMAGE_SUFFIXES
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.faces import Box, FoundFace, face_square
from fer_lightning.serving.recognizer import EmotionRecognizer
from fer_lightning.serving.video import VideoSource, VideoWriter, camera_index, is_video

log = logging.getLogger(__name__)

SKIPPED_COLUMNS = ["file", "reason"]
# Containers a video usually comes in: such a file OpenCV cannot decode is an unreadable video, not "not an image".
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts")
# Why a file gives no face though it was read: not a failure of the input (predict exits 0 when every file is so).
NO_FACE = "no face found"
SKIPPED_FRAME_COLUMNS = ["file", "frame", "time", "reason"]


def list_images(path: Path, recursive: bool) -> list[Path]:
    """The files to read, sorted; hidden files (.DS_Store and the like) are not looked at."""
    if not path.exists():
        raise FileNotFoundError(f"input={path} does not exist: give an image or a folder of images")
    if path.is_file():
        return [path]
    found = path.rglob("*") if recursive else path.iterdir()
    files = sorted(
        p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise FileNotFoundError(
            f"input={path} is a folder with no files{'' if recursive else ' (predict.recursive=false)'}"
        )
    return files


def unreadable(file: Path) -> str | None:
    """Why an image cannot be used whole, as training's reader judges it (PIL): OpenCV decodes a truncated
    JPEG into a half-grey image without an error."""
    try:
        with Image.open(file) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as error:
        suffix = file.suffix.lower()
        return f"unreadable image ({error})" if suffix in IMAGE_SUFFIXES else "not an image"
    return None


def find_faces(
    files: list[Path], recognizer: EmotionRecognizer, progress_bar: bool
) -> tuple[list[FoundFace], list[dict[str, str]], bool]:
    """Every face to predict (with its file), the files skipped with the reason, and whether Ctrl+C stopped the
    search (the faces of the files done before it are kept)."""
    faces: list[FoundFace] = []
    skipped: list[dict[str, str]] = []
    done = 0
    try:
        for file in tqdm(files, desc="faces", unit="file", disable=not progress_bar):
            faces_of_file, skipped_file = faces_in(file, recognizer)
            faces += faces_of_file
            skipped += skipped_file
            done += 1
    except KeyboardInterrupt:
        log.warning("Stopped at Ctrl+C after %d of %d files: writing their predictions", done, len(files))
        return faces, skipped, True
    return faces, skipped, False


def faces_in(file: Path, recognizer: EmotionRecognizer) -> tuple[list[FoundFace], list[dict[str, str]]]:
    """The faces of one file, or why it is skipped."""
    problem = unreadable(file)
    image = cv2.imread(str(file), cv2.IMREAD_COLOR) if problem is None else None  # BGR, EXIF-oriented
    if image is None:
        reason = problem or ("unreadable image" if file.suffix.lower() in IMAGE_SUFFIXES else "not an image")
        if reason == "not an image" and is_video(file):
            reason = "a video: give it alone as input="
        elif reason == "not an image" and file.suffix.lower() in VIDEO_SUFFIXES:
            reason = "unreadable video (OpenCV cannot decode it)"
        return [], [{"file": str(file), "reason": reason}]
    found = recognizer.find_faces(image)
    if not found:  # too small, or none found (with a hint for a face crop)
        return [], [{"file": str(file), "reason": recognizer.why_no_face(image)}]
    return [face._replace(file=file) for face in found], []


def face_rows(boxes: list[Box], probabilities: np.ndarray) -> pd.DataFrame:
    """One row per face: face (left to right), box x/y/w/h, emotion, then p_<emotion> in EMOTIONS order."""
    return pd.DataFrame(
        {
            "face": np.arange(len(boxes)),
            "x": [box.x for box in boxes],
            "y": [box.y for box in boxes],
            "w": [box.w for box in boxes],
            "h": [box.h for box in boxes],
            "emotion": [EMOTIONS[i] for i in probabilities.argmax(1)],
            **{f"p_{name}": probabilities[:, i] for i, name in enumerate(EMOTIONS)},
        }
    )


def prediction_table(faces: list[FoundFace], probabilities: np.ndarray) -> pd.DataFrame:
    """One row per face: file, face, box x/y/w/h, emotion, then p_<emotion> in EMOTIONS order."""
    table = face_rows([face.box for face in faces], probabilities)
    table["face"] = [face.index for face in faces]
    table.insert(0, "file", [str(face.file) for face in faces])
    return table


def face_lines(table: pd.DataFrame, limit: int, top: int = 3) -> list[str]:
    """What a user looks for first, a line per face (the first ``limit``): the file, the face's number and box, the
    emotion predicted and the runners-up, in percent; then how many more faces the tables hold."""
    probabilities = table[[f"p_{name}" for name in EMOTIONS]].to_numpy()
    lines = []
    for row, p in zip(table.head(limit).itertuples(index=False), probabilities, strict=False):
        ranked = np.argsort(-p)[:top]
        guesses = ", ".join(f"{EMOTIONS[i]} {p[i]:.0%}" for i in ranked)
        lines.append(f"{Path(row.file).name} face {row.face} at ({row.x}, {row.y}) {row.w}x{row.h}: {guesses}")
    if len(table) > limit:
        lines.append(f"... {len(table) - limit} more faces in predictions.csv (predict.print_faces={limit})")
    return lines


def annotated_path(file: Path, root: Path, out: Path, image_format: str | None, folder: str = "annotated") -> Path:
    """<folder>/<the file's path under the input folder>, with ``.<image_format>`` appended when it is not
    already the suffix, so two inputs never share a copy."""
    relative = file.relative_to(root) if root.is_dir() else Path(file.name)
    if image_format and relative.suffix.lower() != f".{image_format.lower().lstrip('.')}":
        relative = relative.with_name(f"{relative.name}.{image_format.lstrip('.')}")
    return out / folder / relative


# Annotated copies of smaller images are enlarged to this side (by a whole factor, pixels kept sharp) so their labels
# can be read: on a 48x48 face no legible label fits.
ANNOTATED_MIN_SIDE = 240


def draw_predictions(
    image: np.ndarray, rows: pd.DataFrame, color: tuple[int, int, int], line_width: float, min_side: int = 0
) -> np.ndarray:
    """Each face's box, and "<emotion> <probability>" on a filled tag: above the box where there is room, else below
    it, else inside at its top; the text is made smaller until it fits the image's width, so it is never cut. An
    image with a longer side under ``min_side`` is first enlarged by a whole factor (the boxes with it)."""
    factor = max(1, -(-min_side // max(image.shape[:2]))) if min_side else 1
    if factor > 1:
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
    image_height, image_width = image.shape[:2]
    thickness = max(1, round(max(image_height, image_width) * line_width))
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_color = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    for row in rows.itertuples():
        x, y, w, h = (int(v) * factor for v in (row.x, row.y, row.w, row.h))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, thickness)
        label = f"{row.emotion} {getattr(row, f'p_{row.emotion}'):.2f}"
        font_scale, text_thickness = max(0.4, 0.35 * thickness), thickness  # text height ~ 7 strokes
        (width, height), baseline = cv2.getTextSize(label, font, font_scale, text_thickness)
        while width + 2 * text_thickness > image_width and font_scale > 0.2:  # fit the width: never cut
            font_scale *= 0.9
            text_thickness = max(1, min(text_thickness, round(font_scale * 2)))
            (width, height), baseline = cv2.getTextSize(label, font, font_scale, text_thickness)
        tag_width, tag_height = width + 2 * text_thickness, height + baseline + text_thickness
        if y >= tag_height:  # above the face
            top = y - tag_height
        elif y + h + tag_height <= image_height:  # below it
            top = y + h
        else:  # no room outside: inside at the top
            top = y
        left = max(0, min(x, image_width - tag_width))
        cv2.rectangle(image, (left, top), (left + tag_width, top + tag_height), color, -1)
        cv2.putText(
            image,
            label,
            (left + text_thickness, top + height + text_thickness // 2),
            font,
            font_scale,
            text_color,
            text_thickness,
            cv2.LINE_AA,
        )
    return image


def draw_saliency(image: np.ndarray, square: Box, heat: np.ndarray, alpha: float, angle: float = 0.0) -> np.ndarray:
    """A face's Grad-CAM map (in [0, 1], over the square its face was cut from, turned back by the ``angle`` that
    levelled the face) blended into the image as a jet colour map, weighted by the map, so the places that did not
    count keep their own pixels."""
    heat = cv2.resize(heat, (square.w, square.h), interpolation=cv2.INTER_LINEAR)
    if angle:
        centre = ((square.w - 1) / 2, (square.h - 1) / 2)
        heat = cv2.warpAffine(heat, cv2.getRotationMatrix2D(centre, -angle, 1.0), (square.w, square.h))
    colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    height, width = image.shape[:2]
    x0, y0 = max(square.x, 0), max(square.y, 0)
    x1, y1 = min(square.x + square.w, width), min(square.y + square.h, height)
    if x1 <= x0 or y1 <= y0:
        return image
    inside = np.s_[y0 - square.y : y1 - square.y, x0 - square.x : x1 - square.x]
    weight = alpha * heat[inside][..., None]
    image[y0:y1, x0:x1] = np.uint8(image[y0:y1, x0:x1] * (1 - weight) + colours[inside] * weight)
    return image


def write_image(image: np.ndarray, path: Path) -> Path:
    """Encode by the path's suffix (PNG, with .png appended, when OpenCV cannot write that format)."""
    try:
        ok, encoded = cv2.imencode(path.suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        path = path.with_name(f"{path.name}.png")
        encoded = cv2.imencode(".png", image)[1]
    write_atomically(path, lambda tmp: tmp.write_bytes(encoded.tobytes()))
    return path


def frame_rows(file: str, frame: int, seconds: float, boxes: list[Box], probabilities: np.ndarray) -> pd.DataFrame:
    """One row per face of a video frame: file, frame, time (s), then face_rows' columns."""
    table = face_rows(boxes, probabilities)
    table.insert(0, "time", seconds)
    table.insert(0, "frame", frame)
    table.insert(0, "file", file)
    return table


def video_input(source: str) -> Path | int | None:
    """A camera index or a video file OpenCV decodes (one that is not an image), else None."""
    camera = camera_index(source)
    if camera is not None:
        return camera
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not is_video(path):
        raise ValueError(f"input={source}: an unreadable video (OpenCV cannot decode it; a damaged or cut file?)")
    return path if path.is_file() and unreadable(path) == "not an image" and is_video(path) else None


def predict_video(
    recognizer: EmotionRecognizer, source: Path | int, out: Path, settings: DictConfig
) -> tuple[pd.DataFrame, pd.DataFrame, Path | None]:
    """Rows per face of every ``every_n_frames``-th frame, frames with no face, and the annotated copy's path (the
    frames between predictions show the latest one). Ctrl+C stops a camera (or a long file) and keeps what was done."""
    video = VideoSource(source, settings.camera_fps)
    writer = VideoWriter(out / "annotated" / f"{video.name}.{settings.video_format}", settings.video_codec, video.fps)
    label, rows, skipped = str(source), [], []
    latest = frame_rows(label, 0, 0.0, [], np.empty((0, len(EMOTIONS)), np.float32))
    total = min(filter(None, [video.frame_count, settings.max_frames]), default=None)
    try:
        for index, seconds, frame in tqdm(
            video.frames(settings.max_frames),
            desc="frames",
            unit="frame",
            total=total,
            disable=not settings.progress_bar,
        ):
            if index % settings.every_n_frames == 0:
                found = recognizer.find_faces(frame)
                latest = frame_rows(
                    label,
                    index,
                    seconds,
                    [face.box for face in found],
                    recognizer.probabilities([face.face for face in found]),
                )
                if found:
                    rows.append(latest)
                else:
                    skipped.append({"file": label, "frame": index, "time": seconds, "reason": "no face found"})
            if settings.annotate:
                writer.write(draw_predictions(frame, latest, tuple(settings.box_color), settings.line_width))
    except KeyboardInterrupt:
        log.warning("Stopped at Ctrl+C: writing what was predicted so far")
    except BaseException:
        writer.discard()
        raise
    table = pd.concat(rows, ignore_index=True) if rows else latest
    return table, pd.DataFrame(skipped, columns=SKIPPED_FRAME_COLUMNS), writer.close()


def explain(
    recognizer: EmotionRecognizer,
    faces: list[FoundFace],
    table: pd.DataFrame,
    root: Path,
    out: Path,
    settings: DictConfig,
) -> None:
    """``predict.explain=true``: explained/<file>, the image with each face's Grad-CAM map of its predicted emotion
    over the square it was cut from, and its box and label, so a user sees what the prediction rests on."""
    predicted = np.array([EMOTIONS.index(e) for e in table["emotion"]], np.int64)
    maps = recognizer.saliency([face.face for face in faces], predicted)
    by_file: dict[Path, list[int]] = {}
    for i, face in enumerate(faces):
        by_file.setdefault(face.file, []).append(i)
    for file, members in tqdm(by_file.items(), desc="Grad-CAM", unit="file", disable=not settings.progress_bar):
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        for i in members:
            draw_saliency(
                image, face_square(faces[i].box, settings.margin), maps[i], settings.explain_alpha, faces[i].angle
            )
        drawn = draw_predictions(
            image, table.iloc[members], tuple(settings.box_color), settings.line_width, ANNOTATED_MIN_SIDE
        )
        write_image(drawn, annotated_path(file, root, out, settings.annotated_format, "explained"))
    log.info("Grad-CAM maps of %d faces in %s", len(faces), out / "explained")


def log_skipped(skipped: pd.DataFrame, total: int, what: str, path: Path) -> None:
    """One line for everything skipped (not one per file): how many, why, and where the list is."""
    if not skipped.empty:
        kinds = Counter(reason.split(" (")[0] for reason in skipped["reason"])  # without each file's error text
        reasons = ", ".join(f"{n} {reason}" for reason, n in kinds.most_common())
        log.warning("Skipped %d of %d %s (%s): listed in %s", len(skipped), total, what, reasons, path)


def predict(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every face under ``cfg.input`` (images, a video or a camera); write the tables and annotated copies;
    return (predictions, skipped)."""
    out, settings, source = Path(cfg.paths.output_dir), cfg.predict, str(cfg.input)
    if settings.every_n_frames < 1:
        raise ValueError(f"predict.every_n_frames={settings.every_n_frames}: give 1 (every frame) or more")
    video = video_input(source)
    root = Path(source).expanduser()
    files = list_images(root, settings.recursive) if video is None else []
    recognizer = EmotionRecognizer(LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root), settings)
    interrupted = False  # Ctrl+C in a folder: the files done are written, then the exit status is 130
    if video is not None:
        table, skipped_table, annotated = predict_video(recognizer, video, out, settings)
        counted, total, what = (
            table["frame"].nunique(),
            len(set(table["frame"]) | set(skipped_table["frame"])),
            "frames",
        )
    else:
        faces, skipped, interrupted = find_faces(files, recognizer, settings.progress_bar)
        table = prediction_table(faces, recognizer.probabilities([face.face for face in faces]))
        skipped_table = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
        counted, total, what, annotated = table["file"].nunique(), len(files), "files", None

    write_csv(table, out / "predictions.csv")
    write_csv(skipped_table, out / "skipped.csv")
    write_json(
        {
            "checkpoint": str(recognizer.trained.path),
            "input": source,
            "classes": list(EMOTIONS),
            "predictions": table.to_dict(orient="records"),
            "skipped": skipped_table.to_dict(orient="records"),
        },
        out / "predictions.json",
    )
    if settings.annotate and video is None:
        for file, rows in table.groupby("file", sort=False):
            image = cv2.imread(file, cv2.IMREAD_COLOR)
            drawn = draw_predictions(image, rows, tuple(settings.box_color), settings.line_width, ANNOTATED_MIN_SIDE)
            write_image(drawn, annotated_path(Path(file), root, out, settings.annotated_format))
    if settings.explain and video is None:
        explain(recognizer, faces, table, root, out, settings)
    elif settings.explain:
        log.warning("predict.explain=true: Grad-CAM maps are written for images, not for video frames")
    if video is None and settings.print_faces and len(table):
        log.info("Faces (emotion, then the runners-up):\n%s", "\n".join(face_lines(table, settings.print_faces)))
    log.info(
        "%d faces in %d of %d %s on %s -> %s%s",
        len(table),
        counted,
        total,
        what,
        recognizer.device,
        out,
        f" (annotated video: {annotated.name})" if annotated else "",
    )
    log_skipped(skipped_table, total, what, out / "skipped.csv")
    if interrupted:  # the rows done are written; the exit status says the run did not finish
        raise SystemExit(128 + signal.SIGINT)
    failed = [reason for reason in skipped_table["reason"] if not reason.startswith(NO_FACE)]
    if video is None and total and len(failed) == total:  # not one input could be used: a wrong input, not no faces
        kinds = Counter(reason.split(" (")[0] for reason in failed)
        raise UserInputError(
            f"input={source}: none of the {total} file(s) could be used "
            f"({', '.join(f'{n} {reason}' for reason, n in kinds.most_common())}): listed in {out / 'skipped.csv'}"
        )
    return table, skipped_table
