"""The one canonical class list: FER-2013's CSV label order (0 angry ... 6 neutral).

The image-folder re-upload sorts its folders alphabetically, which is NOT this order: readers map
folder names to indices through ``EMOTIONS.index(name)``, never through sort position.
"""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(EMOTIONS)
FACE_SIZE: int = 48  # FER-2013's faces are 48x48 gray; the side every reader, crop and exported model starts from
