"""python -m fer_lightning.serve: the HTTP API gives predict's numbers, refuses bad input in one line without reading or
decoding more than it must, keeps concurrent requests apart and writes nothing a client sends; the page and the docs
work offline; and (marked browser) the page in headless Chromium shows the faces, emotions and bars.

The fast tests run the app under uvicorn in a thread on a free loopback port and talk to it through real sockets (the
standard library's client, fer_lightning/serving/client.py), so streaming, Content-Length and keep-alive are the real
ones."""

from __future__ import annotations

import base64
import io
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.config import CONFIG_DIR
from fer_lightning.models.trained import LoadedCheckpoint
from fer_lightning.serving.client import Client, multipart
from fer_lightning.serving.predict import predict
from fer_lightning.serving.recognizer import EmotionRecognizer
from tests.conftest import PROBABILITIES, draw_portrait, in_colour

uvicorn = pytest.importorskip("uvicorn", reason="the serve extra: pip install -e '.[serve]'")
server = pytest.importorskip("fer_lightning.serving.server")

MAX_UPLOAD_MB = 4


def serve_config(*overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("serve", overrides=["predict/detector=haar", f"max_upload_mb={MAX_UPLOAD_MB}", *overrides])
    GlobalHydra.instance().clear()
    return cfg


@contextmanager
def running(service: server.Service) -> Iterator[int]:
    """The app under uvicorn in a thread on a free loopback port; the port."""
    config = uvicorn.Config(server.create_app(service), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not live.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield live.servers[0].sockets[0].getsockname()[1]
    finally:
        live.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def service(trained_checkpoint: Path) -> server.Service:
    cfg = serve_config(f"ckpt_path={trained_checkpoint}")
    recognizer = EmotionRecognizer(LoadedCheckpoint.load(cfg.ckpt_path), cfg.predict)
    return server.Service.create(recognizer, cfg)


@pytest.fixture(scope="module")
def port(service: server.Service) -> Iterator[int]:
    with running(service) as port:
        yield port


@pytest.fixture
def client(port: int) -> Iterator[Client]:
    client = Client("127.0.0.1", port)
    yield client
    client.close()


def encoded(image: np.ndarray, suffix: str = ".png") -> bytes:
    return cv2.imencode(suffix, image)[1].tobytes()


def two_faces() -> np.ndarray:
    return in_colour(
        np.hstack([draw_portrait(300, 300, (150, 150), 120), draw_portrait(300, 300, (150, 150), 100, 190, 90)])
    )


def png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels in about 60 KB (zeros compress ~1000:1): 400 million pixels, 1.2 GB
    as the BGR array OpenCV would make of it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(1 + side // 8)  # filter byte 0, then side bits
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def raw_exchange(port: int, head: bytes, body_chunks: Callable[[socket.socket], None] = lambda s: None) -> str:
    """Send a request head (and whatever ``body_chunks`` sends), then read the server's answer; a server that waited
    for a body it was never sent would run into the timeout instead."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        body_chunks(connection)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    return answer.decode(errors="replace")


def faces_of(answer: dict) -> tuple[list[tuple[int, ...]], np.ndarray, list[str]]:
    boxes = [tuple(face["box"][k] for k in "xywh") for face in answer["faces"]]
    probabilities = np.array([[face["probabilities"][name] for name in EMOTIONS] for face in answer["faces"]])
    return boxes, probabilities, [face["emotion"] for face in answer["faces"]]


@pytest.mark.parametrize("form", ["jpg", "png", "png16", "rgba"])
def test_an_upload_gets_the_numbers_predict_gives_the_same_file(
    make_cfg, trained_checkpoint: Path, tmp_path: Path, client: Client, form: str
) -> None:
    image = two_faces()
    file = tmp_path / f"photo.{'jpg' if form == 'jpg' else 'png'}"
    if form == "png16":  # 16 bits per channel
        cv2.imwrite(str(file), image.astype(np.uint16) * 257)
    elif form == "rgba":  # an alpha channel, opaque where the faces are, see-through in a corner
        alpha = np.full(image.shape[:2], 255, np.uint8)
        alpha[:40, :40] = 0
        cv2.imwrite(str(file), np.dstack([image, alpha]))
    else:
        cv2.imwrite(str(file), image)
    table, skipped = predict(
        make_cfg(
            f"ckpt_path={trained_checkpoint}", f"input={file}", "predict/detector=haar", config="predict", fast=False
        )
    )
    assert skipped.empty and len(table) == 2

    status, answer = client.predict(file.read_bytes(), filename="../../etc/passwd")  # the name is never used
    assert status == 200, answer
    boxes, probabilities, emotions = faces_of(answer)
    assert boxes == [tuple(row) for row in table[["x", "y", "w", "h"]].to_numpy()]
    np.testing.assert_allclose(probabilities, table[PROBABILITIES].to_numpy(), atol=1e-6)
    assert emotions == list(table["emotion"])
    assert (answer["width"], answer["height"]) == (600, 300) and answer["note"] is None
    assert answer["model"].startswith("last-") and len(answer["model"]) == len("last-") + 12
    assert answer["ms"] > 0 and all(face["saliency"] is None for face in answer["faces"])


def test_health_names_the_model_classes_detector_and_version(client: Client, service: server.Service) -> None:
    status, health = client.health()
    assert status == 200
    assert health["model"] == service.model and health["checkpoint"] == "last.ckpt"
    assert health["classes"] == list(EMOTIONS) and health["detector"] == "HaarDetector"
    assert health["version"] == "0.1.0" and health["status"] == "ok" and health["explain"] is True
    assert health["max_upload_mb"] == MAX_UPLOAD_MB and health["camera_every_ms"] == 500


def one_line_error(answer: object) -> str:
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    assert answer["error"] and "\n" not in answer["error"]
    return answer["error"]


def test_not_an_image_is_415_with_one_line(client: Client, tmp_path: Path) -> None:
    for data in (b"hello, not an image", b"%PDF-1.4 a pdf", b"", b"GIF89a" + bytes(20)):
        status, answer = client.predict(data)
        assert status in (415, 422) if data.startswith(b"GIF") else status == 415, (data, answer)
        one_line_error(answer)
    status, answer = client.request("POST", "/predict", encoded(two_faces()), {"Content-Type": "image/png"})
    assert status == 415 and "multipart/form-data" in one_line_error(answer)
    body, content_type = multipart(encoded(two_faces()))
    status, answer = client.request(
        "POST", "/predict", body.replace(b'name="file"', b'name="photo"'), {"Content-Type": content_type}
    )
    assert status == 422 and "'file'" in one_line_error(answer)
    end = b"--" + content_type.partition("boundary=")[2].encode() + b"--\r\n"
    part = body.removesuffix(end)  # --boundary, the part's headers, the image, CRLF
    status, answer = client.request("POST", "/predict", part + part + end, {"Content-Type": content_type})
    assert status == 422 and "one image per request" in one_line_error(answer)
    status, answer = client.request("POST", "/predict?explain=maybe", body, {"Content-Type": content_type})
    assert status == 422 and one_line_error(answer).startswith("explain:")
    status, answer = client.request("GET", "/nowhere")
    assert status == 404 and one_line_error(answer)


def test_over_max_upload_mb_is_413_before_the_body_is_read(port: int) -> None:
    body, content_type = multipart(b"x")
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {(MAX_UPLOAD_MB + 1) * 2**20}\r\n\r\n"
    ).encode()
    answer = raw_exchange(port, head)  # not a byte of the 5 MB body sent: the answer comes all the same
    assert answer.startswith("HTTP/1.1 413") and "over the limit of 4 MB (max_upload_mb)" in answer


def test_a_chunked_upload_is_cut_off_once_it_passes_the_limit(port: int) -> None:
    _, content_type = multipart(b"")
    boundary = content_type.split("boundary=")[1]
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    sent = []

    def chunks(connection: socket.socket) -> None:
        start = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'.encode()
        piece = start + bytes(2**20 - len(start))
        for _ in range(3 * MAX_UPLOAD_MB):  # one MB a chunk, never the last (zero-length) chunk
            if select.select([connection], [], [], 0.3)[0]:  # the server has answered: stop sending
                return
            connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent.append(len(piece))
            piece = bytes(2**20)

    answer = raw_exchange(port, head, chunks)
    assert answer.startswith("HTTP/1.1 413") and "max_upload_mb" in answer
    assert len(sent) == MAX_UPLOAD_MB + 1  # answered once past the limit, long before the end of the body


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL says so before max_pixels refuses
def test_a_decompression_bomb_is_refused_from_its_header_memory_flat(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # to look at it here; the server keeps PIL's own limit
    with Image.open(io.BytesIO(bomb)) as image:
        assert image.size == (20_000, 20_000)  # a real PNG of that size
    monkeypatch.undo()
    status, answer = client.predict(bomb)  # past PIL's own limit (179 MP): PIL refuses to open it
    assert status == 413 and "decompression bomb" in one_line_error(answer)
    status, answer = client.predict(png_bomb(10_000))  # 100 MP: under PIL's limit, over max_pixels (50 MP)
    assert status == 413 and "10000x10000 pixels, over the limit of 50,000,000 (max_pixels)" in one_line_error(answer)

    # The same refusal in a fresh process, whose peak memory (ru_maxrss) then says what the refusal cost.
    file = tmp_path / "bomb.png"
    file.write_bytes(bomb)
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from fer_lightning.serving.uploads import Refused, decode_image\n"
        f"data = Path({str(file)!r}).read_bytes()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for limit in (50_000_000, 10**12):  # the configured limit, and none (PIL's own refuses at 179 MP)\n"
        "    try:\n        decode_image(data, limit)\n    except Refused as error:\n        print(error.status)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second, grown_mb = out.stdout.split()
    assert first == second == "413" and int(grown_mb) < 20, out.stdout  # 400 MB or 1.2 GB had it been decoded


def test_awkward_images_truncated_tiny_or_without_a_face(client: Client) -> None:
    jpeg = encoded(two_faces(), ".jpg")
    status, answer = client.predict(jpeg[: len(jpeg) // 2])
    assert status == 422 and one_line_error(answer).startswith("a truncated or damaged image")
    for image in (np.full((1, 1, 3), 120, np.uint8), np.full((240, 320, 3), 128, np.uint8)):
        status, answer = client.predict(encoded(image))
        assert status == 200, answer
        assert answer["faces"] == [] and answer["note"].startswith("no face found")
        assert (answer["height"], answer["width"]) == image.shape[:2]
    crop = encoded(np.full((48, 48, 3), 110, np.uint8))  # face-crop sized, nothing for a detector to find
    status, answer = client.predict(crop)
    assert status == 200 and answer["faces"] == []  # the note says how to take it whole, in this API's terms
    assert answer["note"] == (
        "no face found in what looks like a face crop: POST /predict?detect_faces=false takes the image as one face "
        "(the image is 48x48)"
    )
    status, answer = client.predict(crop, detect_faces=False)
    assert status == 200 and answer["note"] is None
    assert [face["box"] for face in answer["faces"]] == [{"x": 0, "y": 0, "w": 48, "h": 48}]
    status, answer = client.predict(encoded(np.full((8, 8, 3), 110, np.uint8)), detect_faces=False)
    assert status == 200 and answer["faces"] == [] and "smaller than predict.min_face_side" in answer["note"]


def test_concurrent_requests_never_mix_results(client: Client, port: int) -> None:
    images = [
        encoded(two_faces()),
        encoded(in_colour(draw_portrait(480, 640, (420, 220), 140))),
        encoded(np.full((200, 260, 3), 90, np.uint8)),  # no face
        encoded(np.fliplr(two_faces())),
    ]
    expected = [client.predict(image)[1] for image in images]
    assert [len(answer["faces"]) for answer in expected] == [2, 1, 0, 2]

    def ask(i: int) -> tuple[int, dict]:
        worker = Client("127.0.0.1", port)
        try:
            return i % len(images), worker.predict(images[i % len(images)])[1]
        finally:
            worker.close()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(48)))
    for which, answer in answers:
        assert faces_of(answer)[0] == faces_of(expected[which])[0]
        np.testing.assert_array_equal(faces_of(answer)[1], faces_of(expected[which])[1])
        assert (answer["width"], answer["height"]) == (expected[which]["width"], expected[which]["height"])


def test_nothing_a_client_sends_is_written_to_disk(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    watching = threading.Event()

    def audit(event: str, args: tuple) -> None:  # every open() and os.open() in this process, from any thread
        if watching.is_set() and event == "open":
            path, mode, flags = args
            if (mode and any(c in str(mode) for c in "wax+")) or (flags and flags & (os.O_WRONLY | os.O_RDWR)):
                written.append(str(path))

    sys.addaudithook(audit)  # cannot be removed: it does nothing once the event is cleared
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)
    big = encoded(noise)  # over 1 MiB: where Starlette's own form parser would spool to a temporary file
    assert 2**20 < len(big) < MAX_UPLOAD_MB * 2**20
    watching.set()
    try:
        status, answer = client.predict(big, filename="/tmp/../etc/cron.d/x")
        refused = client.predict(b"not an image", filename="../../x")[0]
    finally:
        watching.clear()
    assert status == 200 and refused == 415, answer
    assert written == []


def test_explain_gives_each_face_a_grad_cam_map_and_can_be_turned_off(client: Client, trained_checkpoint: Path) -> None:
    status, answer = client.predict(encoded(two_faces()), explain=True)
    assert status == 200 and len(answer["faces"]) == 2
    for face in answer["faces"]:
        saliency = face["saliency"]
        assert saliency["square"]["w"] == saliency["square"]["h"] >= max(face["box"]["w"], face["box"]["h"])
        assert saliency["angle"] == 0.0 and saliency["png"].startswith("data:image/png;base64,")
        png = cv2.imdecode(
            np.frombuffer(base64.b64decode(saliency["png"].split(",", 1)[1]), np.uint8),
            cv2.IMREAD_UNCHANGED,
        )
        assert png.shape[2] == 4 and png[..., 3].max() > 0  # colours, with the map's strength as alpha

    cfg = serve_config(f"ckpt_path={trained_checkpoint}", "explain=false")
    off = server.Service.create(EmotionRecognizer(LoadedCheckpoint.load(cfg.ckpt_path), cfg.predict), cfg)
    with running(off) as port:
        quiet = Client("127.0.0.1", port)
        status, answer = quiet.predict(encoded(two_faces()), explain=True)
        assert status == 403 and "explain=false" in one_line_error(answer)
        assert quiet.health()[1]["explain"] is False
        quiet.close()


def test_the_page_and_the_docs_load_nothing_from_elsewhere(client: Client) -> None:
    status, page = client.request("GET", "/")
    assert status == 200 and "<canvas" in page
    status, docs = client.request("GET", "/docs")
    assert status == 200 and "SwaggerUIBundle" in docs
    for html in (page, docs):
        urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
        assert urls and all(url.startswith("/") or url.startswith("data:") for url in urls), urls
        for url in urls:
            if url.startswith("/static/"):
                assert client.request("GET", url)[0] == 200, url
    assert "http" not in (server.STATIC_DIR / "app.js").read_text().replace("https, or", "")
    status, spec = client.request("GET", "/openapi.json")
    upload = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert status == 200 and upload["properties"]["file"]["format"] == "binary"
    assert {"413", "415", "422"} <= set(spec["paths"]["/predict"]["post"]["responses"])
    for name in ("../server.py", "..%2Fserver.py", "index.html", "%2Fetc%2Fpasswd"):  # names from a table, never paths
        assert client.request("GET", f"/static/{name}")[0] == 404, name


def test_the_serve_command_binds_to_localhost_and_answers(trained_checkpoint: Path, tmp_path: Path) -> None:
    port = free_port()
    with serve_command(tmp_path, f"ckpt_path={trained_checkpoint}", "predict/detector=haar", f"port={port}") as log:
        status, health = Client("127.0.0.1", port).health()
        assert status == 200 and health["checkpoint"] == "last.ckpt"
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log.read_text()


@pytest.mark.parametrize("setting", ["max_upload_mb=0", "max_pixels=-1", "threads=0"])
def test_a_bad_setting_stops_the_command_in_one_line_before_the_model_loads(setting: str) -> None:
    key, value = setting.split("=")
    with pytest.raises(ValueError, match=rf"^{key}={value}: give a number above 0$"):
        server.serve(serve_config("ckpt_path=/nowhere.ckpt", setting))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_command(folder: Path, *overrides: str) -> Iterator[Path]:
    """``python -m fer_lightning.serve`` in a subprocess until /health answers; Ctrl+C after; its log's path."""
    log = folder / "serve.log"
    port = int(next(o.split("=")[1] for o in overrides if o.startswith("port=")))
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "fer_lightning.serve", "access_log=false", *overrides],
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield log
    finally:
        process.send_signal(2)  # Ctrl+C: uvicorn shuts down
        try:
            assert process.wait(30) == 0, log.read_text()[-3000:]
        finally:
            process.kill()


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.browser
def test_the_page_in_headless_chromium_shows_each_face_its_emotion_and_bars(tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), two_faces())
    port = free_port()
    with serve_command(tmp_path, f"port={port}"):  # the released model, the default detector
        expected = Client("127.0.0.1", port).predict(photo.read_bytes())[1]
        assert len(expected["faces"]) == 2
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--use-fake-ui-for-media-stream",  # allow the camera without asking
            "--use-fake-device-for-media-stream",  # Chromium's test pattern as the camera
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
        try:
            for width, height in ((390, 844), (1600, 1000)):
                driver.execute_cdp_cmd(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
                )
                driver.get(f"http://127.0.0.1:{port}/")
                WebDriverWait(driver, 30).until(
                    lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
                )
                driver.find_element(By.ID, "file").send_keys(str(photo))
                WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces .face")) == 2)
                cards = driver.find_elements(By.CSS_SELECTOR, "#faces .face")
                for card, face in zip(cards, expected["faces"], strict=True):
                    assert card.find_element(By.CSS_SELECTOR, "h2 .emotion").text.lower() == face["emotion"]
                    rows = card.find_elements(By.CSS_SELECTOR, ".row")
                    assert [row.get_attribute("data-emotion") for row in rows] == list(EMOTIONS)
                    for row in rows:
                        p = face["probabilities"][row.get_attribute("data-emotion")]
                        assert float(row.get_attribute("data-p")) == pytest.approx(p, abs=1e-9)
                        track = row.find_element(By.CSS_SELECTOR, ".track").size["width"]
                        bar = row.find_element(By.CSS_SELECTOR, ".bar").size["width"]
                        assert bar / track == pytest.approx(p, abs=0.01)
                        assert row.find_element(By.CSS_SELECTOR, ".value").text == f"{100 * p:.1f}%"
                assert driver.find_element(By.ID, "canvas").size["width"] <= width
                scroll_width = driver.execute_script("return document.documentElement.scrollWidth")
                assert scroll_width <= width, "the page is wider than the window"
                if width > 600:  # the bars beside the image on a wide window; below it on a phone
                    assert cards[0].location["x"] > driver.find_element(By.ID, "canvas").location["x"] + 300
                else:
                    assert cards[0].location["y"] > driver.find_element(By.ID, "canvas").location["y"] + 100
                save_page(driver, tmp_path / f"page_{width}.png")
                driver.find_element(By.ID, "explain").click()  # Grad-CAM: the photo sent again with explain=true
                WebDriverWait(driver, 60).until(lambda d: "Looking" not in d.find_element(By.ID, "status").text)
                assert driver.find_element(By.ID, "status").text == "2 faces found."
                save_page(driver, tmp_path / f"page_{width}_gradcam.png")
            crop = tmp_path / "crop.png"  # face-crop sized, nothing for the detector: taken whole when asked
            cv2.imwrite(str(crop), np.full((48, 48), 110, np.uint8))
            driver.find_element(By.ID, "file").send_keys(str(crop))
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#faces .empty"))
            assert 'tick "Whole image is one face"' in driver.find_element(By.CSS_SELECTOR, "#faces .empty").text
            driver.find_element(By.ID, "whole").click()  # the crop sent again with detect_faces=false
            WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces .face")) == 1)
            driver.get(f"http://127.0.0.1:{port}/docs")  # Swagger UI from the package's own files
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
            paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
            assert {"/predict", "/health"} <= paths, paths
            save_page(driver, tmp_path / "docs_1600.png")
            driver.get(f"http://127.0.0.1:{port}/")
            WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
            driver.find_element(By.ID, "camera").click()  # frames every camera_every_ms: the test pattern has no face
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.ID, "status").text.startswith("Camera: 0 faces")
            )
            assert driver.find_element(By.CSS_SELECTOR, "#faces .empty").text.startswith("No face found")
            save_page(driver, tmp_path / "page_1600_camera.png")
            driver.find_element(By.ID, "camera").click()
            assert driver.find_element(By.ID, "status").text == "Camera off."
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, errors
        finally:
            driver.quit()
    print(f"screenshots in {tmp_path}")


def save_page(driver: object, path: Path) -> None:
    """The whole page, below the window's fold too."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path.write_bytes(base64.b64decode(shot["data"]))
