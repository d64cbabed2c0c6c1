"""python -m fer_lightning.serve_bench: load on the web server over loopback, as numbers (nothing here is a timed test).

    python -m fer_lightning.serve_bench [requests=350] ['concurrency=[1,4,16]'] [face=<48x48 image>] [photo=<image>]

Starts ``python -m fer_lightning.serve`` on a free loopback port (``serve_overrides`` on its command line, its Hydra
folder in a temporary one), sends it ``requests`` POST /predict per image and concurrency level from as many client
threads (fer_lightning/serving/client.py, one keep-alive connection each), and prints a Markdown table: requests/s,
p50/p95/p99 latency as the client measures it, errors (anything but 200), faces per answer; then the server's resident
memory (VmRSS) before the load and after it, and the issue's targets beside the numbers. The client threads share the
machine's cores with the server: on two cores the server has less than two to itself.

The images: ``face``, a 48x48 face (null: a seeded synthetic one, fer_lightning/data/synthetic.py), sent as PNG; and
``photo``, a photo (null: that face enlarged to ``photo_face_side`` on a blurred-noise ``photo_size`` scene, as JPEG),
found by the server's detector, then cut and scored.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.data.synthetic import make_synthetic_faces
from fer_lightning.serving.client import Client

Row = dict[str, float | int | str]


def face_and_photo(cfg: DictConfig) -> dict[str, bytes]:
    """The two uploads, encoded as a user's files would be."""
    if cfg.face:
        face = cv2.imread(str(Path(cfg.face).expanduser()), cv2.IMREAD_GRAYSCALE)
        if face is None:
            raise ValueError(f"face={cfg.face}: not an image OpenCV can read")
    else:
        faces, labels = make_synthetic_faces(1, np.random.default_rng(cfg.seed))
        face = faces[list(labels).index(EMOTIONS.index("happy"))]
    if cfg.photo:
        photo = Path(cfg.photo).expanduser().read_bytes()
    else:
        width, height = cfg.photo_size
        rng = np.random.default_rng(cfg.seed)
        scene = cv2.GaussianBlur(rng.uniform(60, 200, (height, width)).astype(np.float32), (0, 0), 6)
        side = cfg.photo_face_side
        top, left = (height - side) // 2, (width - side) * 2 // 3
        scene[top : top + side, left : left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        photo = cv2.imencode(".jpg", cv2.cvtColor(scene.astype(np.uint8), cv2.COLOR_GRAY2BGR))[1].tobytes()
    return {"face": cv2.imencode(".png", face)[1].tobytes(), "photo": photo}


def resident_mb(pid: int) -> float:
    """A process's resident memory (VmRSS), in MB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def server(cfg: DictConfig) -> Iterator[tuple[subprocess.Popen, int]]:
    """``python -m fer_lightning.serve`` on a free loopback port until /health answers; stopped (Ctrl+C) after."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        command = [
            sys.executable,
            "-m",
            "fer_lightning.serve",
            f"port={port}",
            "host=127.0.0.1",
            "access_log=false",
            f"hydra.run.dir={folder}/run",
            *([f"ckpt_path={cfg.ckpt_path}"] if cfg.ckpt_path else []),
            *cfg.serve_overrides,
        ]
        with log.open("w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + cfg.startup_timeout_s
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not start:\n{log.read_text()[-3000:]}")
                try:
                    if Client("127.0.0.1", port, timeout=5).health()[0] == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            yield process, port
        finally:
            process.send_signal(2)  # Ctrl+C: uvicorn's graceful shutdown
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def load(port: int, image: bytes, requests: int, concurrency: int) -> Row:
    """``requests`` uploads of ``image`` from ``concurrency`` threads, each taking the next request as it is done."""
    latencies: list[float] = []
    faces: list[int] = []
    errors: list[str] = []
    next_request = iter(range(requests))
    lock = threading.Lock()

    def worker() -> None:
        client = Client("127.0.0.1", port)
        try:
            while True:
                with lock:
                    if next(next_request, None) is None:
                        return
                start = time.perf_counter()
                try:
                    status, answer = client.predict(image)
                except OSError as error:
                    status, answer = 0, str(error)
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    if status == 200:
                        faces.append(len(answer["faces"]))
                    else:
                        errors.append(f"{status}: {answer}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    if errors:
        print(f"  {len(errors)} errors, the first: {errors[0][:300]}")
    return {
        "requests": requests,
        "concurrency": concurrency,
        "requests/s": round(requests / wall, 1),
        "p50 ms": round(p50, 1),
        "p95 ms": round(p95, 1),
        "p99 ms": round(p99, 1),
        "errors": len(errors),
        "faces/answer": round(float(np.mean(faces)), 2) if faces else 0,
    }


def machine() -> str:
    """The CPU, its best vector instructions and the cores this process may use: numbers differ with each."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", info)
    flags = set(re.findall(r"\b(amx_bf16|avx512_bf16|avx512f|avx2)\b", info))
    best = next((flag for flag in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if flag in flags), "none of those")
    return f"{model.group(1).strip() if model else 'unknown CPU'}, {best}, {len(os.sched_getaffinity(0))} cores"


def serve_bench(cfg: DictConfig) -> dict[str, object]:
    """Run the load, print the table, the memory and the targets; return the numbers."""
    if cfg.requests < 1 or not cfg.concurrency or min(cfg.concurrency) < 1:
        raise ValueError("requests and every concurrency: give 1 or more")
    images = face_and_photo(cfg)
    print(f"machine: {machine()}")
    rows: list[Row] = []
    with server(cfg) as (process, port):
        client = Client("127.0.0.1", port)
        health = client.health()[1]
        print(f"server: model {health['model']}, detector {health['detector']}, pid {process.pid}")
        for image in images.values():  # not timed: the first requests of each kind warm caches
            for _ in range(cfg.warmup):
                client.predict(image)
        client.close()
        before = resident_mb(process.pid)
        for name, image in images.items():
            for concurrency in cfg.concurrency:
                rows.append({"image": name, **load(port, image, cfg.requests, concurrency)})
        after = resident_mb(process.pid)
    total = sum(int(row["requests"]) for row in rows)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[column]) for column in columns) + " |")
    print(f"server RSS: {before:.0f} MB before, {after:.0f} MB after {total} requests ({after - before:+.0f} MB)")
    errors = sum(int(row["errors"]) for row in rows)
    photo_at_4 = [row["p95 ms"] for row in rows if row["image"] == "photo" and row["concurrency"] == 4]
    checks = [
        ("errors == 0", errors, errors == 0),
        (
            f"RSS growth < {cfg.targets.rss_growth_mb} MB",
            round(after - before),
            after - before < cfg.targets.rss_growth_mb,
        ),
    ]
    if photo_at_4:
        p95 = float(photo_at_4[0])
        checks.append(
            (
                f"photo p95 at concurrency 4 < {cfg.targets.photo_p95_ms_at_4} ms",
                p95,
                p95 < cfg.targets.photo_p95_ms_at_4,
            )
        )
    for label, value, met in checks:
        print(f"target {label:42s} {value:>8}  {'met' if met else 'MISSED'}")
    return {"rows": rows, "rss_before_mb": before, "rss_after_mb": after, "errors": errors}
