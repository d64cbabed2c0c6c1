"""python -m fer_lightning.serve: a web page and an HTTP API over the Python API, fer_lightning.EmotionRecognizer.

An upload gets the faces and emotions ``python -m fer_lightning.predict`` gives the same file: it is decoded as
predict reads a file (fer_lightning/serving/uploads.py), then goes through the recognizer's detector, crop, transform,
forward pass and temperature. The model and the detectors are not safe to share between threads (OpenCV's nets hold
their input, Grad-CAM hooks the model), so one worker thread decodes and recognizes the uploads, one at a time, while
the event loop reads the next bodies and answers. One thread, not Starlette's pool: there the server's memory grew with
the requests in flight (+24 MB at 4, +95 MB at 16; glibc keeps an arena per thread) and the photo took longer; with one
it stays flat. Every asset, the API docs' included, is served from the package: the page and /docs work offline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from omegaconf import DictConfig

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.faces import FoundFace, face_square
from fer_lightning.serving.recognizer import EmotionRecognizer
from fer_lightning.serving.uploads import FIELD, MultipartImage, Refused, check_length, decode_image

try:
    import uvicorn
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException
except ModuleNotFoundError as error:  # the serve extra is optional
    raise ModuleNotFoundError(
        f"python -m fer_lightning.serve needs {error.name}: pip install -e '.[serve]'", name=error.name
    ) from None

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page's content security policy: its own scripts, styles and API only (no CDN, nothing inline); camera frames and
# Grad-CAM maps are blob: and data: images.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


def static_assets() -> dict[str, Path]:
    """The files /static/<name> serves, by name: the page's own, and Swagger UI's for /docs from the fastapi-offline
    wheel (the serve extra) where it is installed. A client's URL only picks a name from this table, never a path."""
    assets = {path.name: path for path in STATIC_DIR.iterdir() if path.suffix in MEDIA_TYPES}
    spec = importlib.util.find_spec("fastapi_offline")  # looked up, not imported
    if spec is not None and spec.origin:
        swagger = Path(spec.origin).parent / "static"
        assets |= {name: swagger / name for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")}
    return {name: path for name, path in assets.items() if path.is_file()}


class FaceBox(BaseModel):
    """A box in the uploaded image's pixels (EXIF orientation applied)."""

    x: int
    y: int
    w: int
    h: int


class Saliency(BaseModel):
    """A face's Grad-CAM map of its predicted emotion: a PNG (colours, with the map's strength as alpha) to be drawn
    over ``square``, the square the face was cut from, turned clockwise by ``angle`` degrees about its centre."""

    square: FaceBox
    angle: float
    png: str = Field(description="data:image/png;base64,...")


class Face(BaseModel):
    box: FaceBox
    emotion: str = Field(description="the most probable of the seven")
    probabilities: dict[str, float] = Field(description="the seven emotions' calibrated probabilities, in class order")
    saliency: Saliency | None = Field(None, description="with explain=true")


class Prediction(BaseModel):
    faces: list[Face] = Field(description="left to right; empty where no face was found")
    width: int
    height: int
    note: str | None = Field(None, description="why no face was found, where none was")
    model: str = Field(description="the model's id: checkpoint name and the start of its SHA-256")
    ms: float = Field(description="the server's time for this request, from its first byte to the answer")


class Health(BaseModel):
    status: str
    model: str
    checkpoint: str
    temperature: float
    classes: list[str]
    detector: str | None
    version: str
    explain: bool = Field(description="whether Grad-CAM maps are given on request")
    max_upload_mb: float
    camera_every_ms: int


class Problem(BaseModel):
    error: str = Field(description="what is wrong, on one line")


REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": why}
    for status, why in {
        400: "a malformed request",
        403: "explain=true on a server started with explain=false",
        413: "the upload is over max_upload_mb, or its image over max_pixels",
        415: "not multipart/form-data, or the file is not an image",
        422: "no file field or more than one file, a bad query value, or a truncated or damaged image",
    }.items()
}
UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                    "required": [FIELD],
                }
            }
        },
    }
}


# The HTTP API's way to take a face crop whole (POST /predict's query), for the note of an image with no face.
WHOLE_IMAGE = "POST /predict?detect_faces=false takes the image as one face"


def model_id(path: Path) -> str:
    """The checkpoint's file name without its suffix and the first 12 hex digits of its SHA-256: two servers give the
    same id only for the same weights."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stem}-{digest.hexdigest()[:12]}"


def package_version() -> str:
    try:
        return version("fer-lightning")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def saliency_png(heat: np.ndarray, alpha: float) -> str:
    """A Grad-CAM map in [0, 1] as predict draws it (the jet colour map, covering the face where it counts), as a
    data URL of a BGRA PNG whose alpha is ``alpha`` times the map."""
    heat = np.clip(heat, 0, 1)
    colours = cv2.applyColorMap(np.uint8(heat * 255), cv2.COLORMAP_JET)
    bgra = np.dstack([colours, np.uint8(heat * alpha * 255)])
    return "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", bgra)[1].tobytes()).decode()


@dataclass
class Service:
    """The recognizer and the server's settings (conf/serve.yaml); one request at a time through the model, in the
    ``worker`` thread (the lock also keeps out callers from other threads)."""

    recognizer: EmotionRecognizer
    settings: DictConfig
    model: str
    lock: threading.Lock
    worker: ThreadPoolExecutor

    @classmethod
    def create(cls, recognizer: EmotionRecognizer, settings: DictConfig) -> Service:
        worker = ThreadPoolExecutor(1, thread_name_prefix="recognizer")
        return cls(recognizer, settings, model_id(recognizer.trained.path), threading.Lock(), worker)

    @property
    def max_bytes(self) -> int:
        return int(self.settings.max_upload_mb * 2**20)

    def recognize(self, data: bytes, explain: bool, detect_faces: bool = True) -> dict[str, Any]:
        """The faces of an uploaded image, as predict finds and scores them (``detect_faces=False``: the whole image
        is one face, as ``predict.detect_faces=false`` takes it)."""
        image = decode_image(data, self.settings.max_pixels)
        with self.lock:
            found = self.recognizer.find_faces(image, detect_faces)
            probabilities = self.recognizer.probabilities([face.face for face in found])
            maps = self.recognizer.saliency([f.face for f in found], probabilities.argmax(1)) if explain else None
        faces = [
            self.face(face, p, maps[i] if maps is not None else None)
            for i, (face, p) in enumerate(zip(found, probabilities, strict=True))
        ]
        height, width = image.shape[:2]
        note = None if found else self.recognizer.why_no_face(image, detect_faces, WHOLE_IMAGE)
        return {"faces": faces, "width": width, "height": height, "note": note}

    def face(self, found: FoundFace, probabilities: np.ndarray, heat: np.ndarray | None) -> Face:
        saliency = None
        if heat is not None:
            square = face_square(found.box, self.recognizer.settings.margin)
            saliency = Saliency(
                square=FaceBox(**square._asdict()),
                angle=found.angle,
                png=saliency_png(heat, self.recognizer.settings.explain_alpha),
            )
        return Face(
            box=FaceBox(**found.box._asdict()),
            emotion=EMOTIONS[int(probabilities.argmax())],
            probabilities={name: float(p) for name, p in zip(EMOTIONS, probabilities, strict=True)},
            saliency=saliency,
        )

    def health(self) -> Health:
        detector = self.recognizer.detector
        return Health(
            status="ok",
            model=self.model,
            checkpoint=self.recognizer.trained.path.name,
            temperature=self.recognizer.trained.temperature,
            classes=list(EMOTIONS),
            detector=type(detector).__name__ if detector is not None else None,
            version=package_version(),
            explain=self.settings.explain,
            max_upload_mb=self.settings.max_upload_mb,
            camera_every_ms=self.settings.camera_every_ms,
        )

    def warm_up(self) -> None:
        """One image through the detector and the model, in the worker thread, before the first request: lazy set-up
        (torch's and OpenCV's, per process and per thread) is not that request's wait."""
        self.worker.submit(
            self.recognize, cv2.imencode(".png", np.full((96, 96, 3), 128, np.uint8))[1].tobytes(), False
        ).result()


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(service: Service) -> FastAPI:
    """The page (/), the API (POST /predict, GET /health) and its docs (/docs, /openapi.json)."""
    app = FastAPI(
        title="fer-lightning",
        summary="Faces and their emotions (angry, disgust, fear, happy, sad, surprise, neutral) in an uploaded image",
        version=package_version(),
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would ask swagger.io to validate the spec
    )
    assets = static_assets()

    @app.exception_handler(Refused)
    async def refused(request: Request, problem: Refused) -> JSONResponse:
        return error(problem.status, str(problem))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, problem: RequestValidationError) -> JSONResponse:
        first = problem.errors()[0]
        return error(422, f"{'.'.join(str(part) for part in first['loc'][1:])}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, problem: HTTPException) -> JSONResponse:
        return error(problem.status_code, str(problem.detail))

    @app.exception_handler(Exception)
    async def server_error(request: Request, problem: Exception) -> JSONResponse:
        return error(500, f"internal error ({type(problem).__name__}): see the server's log")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in assets:
            raise HTTPException(404, f"/static/{name[:60]}: no such file")
        return FileResponse(assets[name], media_type=MEDIA_TYPES[assets[name].suffix])

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if "swagger-ui-bundle.js" not in assets:
            raise HTTPException(404, "the docs page needs fastapi-offline (pip install -e '.[serve]'); /openapi.json")
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="fer-lightning API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get("/health")
    async def health() -> Health:
        """The model, its classes (the order of the probabilities), the face detector and the package's version."""
        return service.health()

    @app.post("/predict", responses=REFUSALS, openapi_extra=UPLOAD)
    async def predict(
        request: Request,
        explain: bool = Query(False, description="add each face's Grad-CAM map"),
        detect_faces: bool = Query(True, description="false: the whole image is one face (a face crop)"),
    ) -> Prediction:
        """Each face in the image (multipart/form-data, field ``file``) with its box, emotion and the seven calibrated
        probabilities: what ``python -m fer_lightning.predict`` gives for the same file."""
        start = time.perf_counter()
        if explain and not service.settings.explain:
            raise Refused(403, "Grad-CAM maps are off on this server (started with explain=false)")
        check_length(request.headers.get("content-length"), service.max_bytes)
        upload = MultipartImage(request.headers.get("content-type"), service.max_bytes)
        async for chunk in request.stream():
            upload.feed(chunk)
        found = await asyncio.get_running_loop().run_in_executor(
            service.worker, service.recognize, upload.image_bytes(), explain, detect_faces
        )
        return Prediction(**found, model=service.model, ms=round((time.perf_counter() - start) * 1000, 1))

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def serve(cfg: DictConfig) -> None:
    """Load the model, warm it up and serve until Ctrl+C (conf/serve.yaml)."""
    for key in ("max_upload_mb", "max_pixels", "camera_every_ms", "limit_concurrency", "threads"):
        if cfg[key] is not None and cfg[key] <= 0:
            raise ValueError(f"{key}={cfg[key]}: give a number above 0")
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)  # this process serves one request at a time (Service.worker)
    recognizer = EmotionRecognizer(LoadedCheckpoint.load(cfg.ckpt_path, cfg.paths.root), cfg.predict)
    service = Service.create(recognizer, cfg)
    service.warm_up()
    if not is_loopback(cfg.host):
        log.warning("host=%s: reachable from other machines, with no authentication", cfg.host)
    log.info("Serving %s on %s: http://%s:%d/ (API docs: /docs)", service.model, recognizer.device, cfg.host, cfg.port)
    uvicorn.run(
        create_app(service),
        host=cfg.host,
        port=cfg.port,
        log_config=None,  # Hydra's logging: the console and the run folder's serve.log
        access_log=cfg.access_log,
        limit_concurrency=cfg.limit_concurrency,
        server_header=False,
    )
