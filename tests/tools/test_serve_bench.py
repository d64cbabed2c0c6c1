"""The serve load benchmark: a real server started and stopped, every request counted, the targets printed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import compose_cfg

pytest.importorskip("uvicorn", reason="the serve extra: pip install -e '.[serve]'")


def test_a_small_load_on_a_real_server_counts_every_request(
    trained_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from fer_lightning.tools.serve_bench import face_and_photo, serve_bench

    cfg = compose_cfg(
        tmp_path / "run",
        f"ckpt_path={trained_checkpoint}",
        'serve_overrides=["predict/detector=haar"]',
        "requests=6",
        "concurrency=[1,3]",
        "warmup=1",
        config="serve_bench",
        fast=False,
    )
    images = face_and_photo(cfg)
    face = cv2.imdecode(np.frombuffer(images["face"], np.uint8), cv2.IMREAD_UNCHANGED)
    photo = cv2.imdecode(np.frombuffer(images["photo"], np.uint8), cv2.IMREAD_UNCHANGED)
    assert face.shape == (48, 48) and photo.shape[:2] == (480, 640)

    results = serve_bench(cfg)

    rows = results["rows"]
    assert [(row["image"], row["concurrency"]) for row in rows] == [
        ("face", 1),
        ("face", 3),
        ("photo", 1),
        ("photo", 3),
    ]
    assert all(row["requests"] == 6 and row["errors"] == 0 and row["requests/s"] > 0 for row in rows)
    assert all(row["p50 ms"] <= row["p95 ms"] <= row["p99 ms"] for row in rows)
    assert results["rss_after_mb"] > 100 and results["errors"] == 0
    out = capsys.readouterr().out
    assert "| image | requests | concurrency |" in out and "target errors == 0" in out and "server RSS" in out
    assert not list((tmp_path / "run").glob("**/*"))  # the server's Hydra folder was a temporary one
