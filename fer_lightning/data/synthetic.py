"""Built-in, seeded face-like images of the seven emotions: demo and test data that needs no download.

Classes differ only in expression features (eye openness, brow height and slant, mouth curve, width,
opening, one-sided lift, nose wrinkles) while pose, lighting, background and noise vary at random, so a
model must read the expression, as on real faces. Per-sample jitter of every feature makes neighbouring
classes overlap a little, so a small CNN learns them well but not perfectly.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_lightning.core.classes import EMOTIONS, NUM_CLASSES

# Expression features on a 96x96 drawing canvas (pixels), per emotion:
# eye: eye half-height; brow: brow height above the eye; slant: inner brow end raised (+) or lowered (-);
# curve: mouth corners raised (+, smile) or lowered (-); width: mouth half-width; open: mouth opening;
# lift: one mouth corner raised (disgust's sneer); wrinkle: nose wrinkle strength (drawn above 0.5).
EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry": dict(eye=2.0, brow=5.0, slant=-6.0, curve=-2.0, width=10.0, open=0.0, lift=0.0, wrinkle=0.0),
    "disgust": dict(eye=2.6, brow=6.0, slant=-3.0, curve=-2.0, width=11.0, open=2.5, lift=6.0, wrinkle=1.0),
    "fear": dict(eye=5.6, brow=12.0, slant=5.0, curve=-2.0, width=16.0, open=6.0, lift=0.0, wrinkle=0.0),
    "happy": dict(eye=3.0, brow=9.0, slant=0.0, curve=8.0, width=15.0, open=3.0, lift=0.0, wrinkle=0.0),
    "sad": dict(eye=3.0, brow=9.0, slant=6.0, curve=-7.0, width=11.0, open=0.0, lift=0.0, wrinkle=0.0),
    "surprise": dict(eye=6.0, brow=15.0, slant=0.0, curve=0.0, width=7.0, open=12.0, lift=0.0, wrinkle=0.0),
    "neutral": dict(eye=3.6, brow=9.0, slant=0.0, curve=0.0, width=12.0, open=0.0, lift=0.0, wrinkle=0.0),
}
# Per-sample jitter (standard deviation, same units) added to every feature: how much classes overlap.
JITTER: dict[str, float] = dict(eye=0.9, brow=2.0, slant=2.0, curve=2.0, width=2.0, open=1.8, lift=1.8, wrinkle=0.35)
CANVAS = 96  # faces are drawn at twice the output size, then shrunk
_MOUTH_X = np.linspace(-1.0, 1.0, 17)  # mouth points, from corner to corner


def _draw_face(features: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """One upright, centred face on a CANVAS x CANVAS float canvas; rng picks the skin, background and ink."""
    background, skin = rng.uniform(30, 200), rng.uniform(120, 230)
    if abs(skin - background) < 40:  # keep the face outline visible
        background = skin - 60 if skin > 100 else skin + 60
    canvas = np.full((CANVAS, CANVAS), background, np.float32)
    dark, white = float(rng.uniform(10, 70)), float(min(255.0, skin + 30))
    cx, eye_y, aa = CANVAS // 2, 42, cv2.LINE_AA
    cv2.ellipse(canvas, (cx, 50), (30, 38), 0, 0, 360, float(skin), -1, aa)
    eye = max(1.0, features["eye"])
    for side in (-1, 1):  # eye white, iris (clipped by the lids when narrowed), brow
        cv2.ellipse(canvas, (cx + side * 13, eye_y), (6, round(eye)), 0, 0, 360, white, -1, aa)
        cv2.ellipse(canvas, (cx + side * 13, eye_y), (3, round(min(eye, 3.5))), 0, 0, 360, dark, -1, aa)
        cv2.ellipse(canvas, (cx + side * 13, eye_y), (6, round(eye)), 0, 0, 360, dark, 1, aa)
        outer_y = round(eye_y - features["brow"] - eye / 2)
        cv2.line(canvas, (cx + side * 21, outer_y), (cx + side * 6, round(outer_y - features["slant"])), dark, 3, aa)
    cv2.line(canvas, (cx, 50), (cx - 2, 60), dark + 40, 2, aa)
    if features["wrinkle"] > 0.5:  # disgust's nose wrinkles
        for side in (-1, 1):
            cv2.line(canvas, (cx + side * 4, 51), (cx + side * 9, 57), dark + 20, 2, aa)
    # Mouth: a centre line bent by curve (and by lift on a random side), opened symmetrically around it.
    x = _MOUTH_X if rng.random() < 0.5 else -_MOUTH_X  # the lifted corner's side
    centre = 72 - features["curve"] * x**2 - features["lift"] * np.clip(x, 0, None)
    mouth_x = cx + max(4.0, features["width"]) * x
    half_open = max(0.0, features["open"]) / 2 * np.sqrt(1 - x**2)
    upper, lower = np.stack([mouth_x, centre - half_open], 1), np.stack([mouth_x, centre + half_open], 1)
    if features["open"] > 1.0:
        cv2.fillPoly(canvas, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], dark, aa)
    cv2.polylines(canvas, [np.round(upper).astype(np.int32)], False, dark, 2, aa)
    return canvas


def _pose(canvas: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """The canvas shrunk to size x size (area averaging: anti-aliased), then rotated (+-12 deg), scaled
    (+-10%) and shifted (+-3 px at 48) at random."""
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
    matrix[:, 2] += rng.uniform(-3, 3, 2) * size / 48
    return cv2.warpAffine(small, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def make_synthetic_faces(n_per_class: int, rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``7 * n_per_class`` shuffled faces (uint8, size x size) and labels (int64, index into EMOTIONS).

    A stand-in for FER-2013 with the same shape and classes, so demos and tests run without the real data;
    everything is drawn from ``rng``, so the same generator state gives the same faces.
    """
    labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES, dtype=np.int64), n_per_class))
    faces = np.empty((len(labels), size, size), np.float32)
    jitter = rng.normal(0.0, list(JITTER.values()), (len(labels), len(JITTER)))
    for i, label in enumerate(labels):
        features = {k: EXPRESSIONS[EMOTIONS[label]][k] + d for k, d in zip(JITTER, jitter[i].tolist(), strict=True)}
        faces[i] = _pose(_draw_face(features, rng), size, rng)
    # Lighting and sensor noise for the whole batch at once (float32, in place): contrast, brightness, a linear
    # illumination gradient, and pixel noise of random strength (uniform, not Gaussian: 8x faster to draw).
    yy, xx = (np.mgrid[0:size, 0:size] / size - 0.5).astype(np.float32)
    ranges = ((0.6, 1.2), (-25, 25), (-50, 50), (-50, 50), (3, 12))
    gain, offset, x_slope, y_slope, noise_std = (
        rng.uniform(low, high, (len(labels), 1, 1)).astype(np.float32) for low, high in ranges
    )
    faces *= gain
    faces += offset + x_slope * xx + y_slope * yy
    faces += (rng.random(faces.shape, np.float32) - 0.5) * (noise_std * 12**0.5)  # uniform noise of that std
    return np.clip(faces, 0, 255, out=faces).astype(np.uint8), labels
