"""python -m fer_lightning.predict (conf/predict.yaml):
the emotions of the faces in new images, videos or a camera."""

from __future__ import annotations

from fer_lightning.core.entry import entry_point
from fer_lightning.serving.predict import predict

main = entry_point("predict", predict)

if __name__ == "__main__":
    main()
