"""Built-in, seeded face-like images of the seven emotions: demo and test data that needs no download.

Classes differ only in expression features (eye openness, brow height and slant, mouth curve, width,
opening, asymmetry, nose wrinkles) while pose, lighting, background and noise vary at random, so a
model must read the expression, as on real faces. Per-sample jitter makes neighbouring classes overlap.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_lightning.classes import EMOTIONS

# Expression features on a 96x96 drawing canvas (pixels), per emotion:
# eye: eye half-height; brow: brow height above the eye; slant: inner brow end raised (+) or lowered (-);
# curve: mouth corners raised (+, smile) or lowered (-); width: mouth half-width; open: mouth opening;
# lift: one mouth corner raised (disgust's sneer); wrinkle: nose wrinkle lines.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry":    dict(eye=2.2, brow=5.0, slant=-6.0, curve=-2.0, width=10.0, open=0.0, lift=0.0, wrinkle=0.0),
    "disgust":  dict(eye=2.6, brow=6.0, slant=-3.0, curve=-2.0, width=11.0, open=2.0, lift=6.0, wrinkle=1.0),
    "fear":     dict(eye=5.8, brow=12.0, slant=5.0, curve=-2.0, width=16.0, open=6.0, lift=0.0, wrinkle=0.0),
    "happy":    dict(eye=2.8, brow=9.0, slant=0.0, curve=8.0, width=15.0, open=2.5, lift=0.0, wrinkle=0.0),
    "sad":      dict(eye=3.0, brow=9.0, slant=6.0, curve=-7.0, width=11.0, open=0.0, lift=0.0, wrinkle=0.0),
    "surprise": dict(eye=6.2, brow=15.0, slant=0.0, curve=0.0, width=7.0, open=11.0, lift=0.0, wrinkle=0.0),
    "neutral":  dict(eye=3.6, brow=9.0, slant=0.0, curve=0.0, width=12.0, open=0.0, lift=0.0, wrinkle=0.0),
}
JITTER = 1.8  # standard deviation (canvas pixels) added to every expression feature
CANVAS = 96


def _draw_face(features: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    background, skin = rng.uniform(30, 200), rng.uniform(120, 230)
    if abs(skin - background) < 40:
        background = skin - 60 if skin > 100 else skin + 60
    canvas = np.full((CANVAS, CANVAS), background, np.float32)
    dark = float(rng.uniform(10, 70))
    cx, aa = CANVAS // 2, cv2.LINE_AA
    cv2.ellipse(canvas, (cx, 50), (30, 38), 0, 0, 360, float(skin), -1, aa)
    eye_y = 42
    for side in (-1, 1):
        cv2.ellipse(canvas, (cx + side * 13, eye_y), (5, max(1, round(features["eye"]))), 0, 0, 360, dark, -1, aa)
        brow_y = eye_y - features["brow"]
        outer = (cx + side * 21, round(brow_y))
        inner = (cx + side * 6, round(brow_y - features["slant"]))
        cv2.line(canvas, outer, inner, dark, 3, aa)
    cv2.line(canvas, (cx, 50), (cx - 2, 60), dark + 40, 2, aa)
    if features["wrinkle"] > 0.5:
        for side in (-1, 1):
            cv2.line(canvas, (cx + side * 3, 52), (cx + side * 8, 57), dark + 30, 1, aa)
    width = max(4.0, features["width"])
    x = np.linspace(-1.0, 1.0, 15)
    upper_y = 72 - features["curve"] * x**2 + features["lift"] * np.clip(x, 0, None) * -1
    mouth_x = cx + width * x
    if features["open"] > 1.0:
        lower_y = upper_y + features["open"] * (1 - x**2)
        polygon = np.concatenate([np.stack([mouth_x, upper_y], 1), np.stack([mouth_x, lower_y], 1)[::-1]])
        cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], dark, aa)
    cv2.polylines(canvas, [np.round(np.stack([mouth_x, upper_y], 1)).astype(np.int32)], False, dark, 2, aa)
    return canvas


def _pose_and_light(canvas: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    scale = size / CANVAS * rng.uniform(0.9, 1.1)
    matrix = cv2.getRotationMatrix2D((CANVAS / 2, CANVAS / 2), rng.uniform(-12, 12), scale)
    matrix[:, 2] += (size - CANVAS) / 2 + rng.uniform(-3, 3, 2) * size / 48  # canvas centre -> output centre, shifted
    blurred = cv2.GaussianBlur(canvas, (0, 0), 0.8)
    face = cv2.warpAffine(blurred, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    gradient = rng.uniform(-50, 50) * xx + rng.uniform(-50, 50) * yy
    face = face * rng.uniform(0.6, 1.2) + rng.uniform(-25, 25) + gradient + rng.normal(0, rng.uniform(3, 12), face.shape)
    return np.clip(face, 0, 255).astype(np.uint8)


def make_synthetic_faces(n_per_class: int, rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``7 * n_per_class`` faces (uint8, size x size) and their labels (index into EMOTIONS), shuffled."""
    labels = rng.permutation(np.repeat(np.arange(len(EMOTIONS), dtype=np.int64), n_per_class))
    images = np.empty((len(labels), size, size), np.uint8)
    for i, label in enumerate(labels):
        expression = EXPRESSIONS[EMOTIONS[label]]
        features = {k: v + (0.0 if k == "wrinkle" else rng.normal(0, JITTER)) for k, v in expression.items()}
        images[i] = _pose_and_light(_draw_face(features, rng), size, rng)
    return images, labels
