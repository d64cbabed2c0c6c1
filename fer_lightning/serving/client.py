"""A client of python -m fer_lightning.serve's API on the standard library's http.client (no requests or httpx): the
load benchmark and the tests use it, and so can a script.

    client = Client("127.0.0.1", 8000)
    status, answer = client.predict(Path("photo.jpg").read_bytes())  # 200, {"faces": [...], "model": ..., "ms": ...}
"""

from __future__ import annotations

import http.client
import json
import secrets
from typing import Any

from fer_lightning.serving.uploads import FIELD


def multipart(data: bytes, filename: str = "image") -> tuple[bytes, str]:
    """``data`` as the one file of a multipart/form-data body, in the field the server reads; (body, content type)."""
    boundary = f"fer-{secrets.token_hex(12)}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{FIELD}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Client:
    """One keep-alive connection to the server (opened again where the server closed it, as after a refusal)."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, the answer): JSON decoded, text as a string, anything else as bytes."""
        try:
            self.connection.request(method, path, body, headers or {})
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.connection.close()  # the server closed a kept-alive connection: once more on a new one
            self.connection.request(method, path, body, headers or {})
            response = self.connection.getresponse()
        data, kind = response.read(), response.getheader("Content-Type", "")
        if kind.startswith("application/json"):
            return response.status, json.loads(data)
        return response.status, data.decode() if kind.startswith("text/") else data

    def predict(
        self, image: bytes, explain: bool = False, filename: str = "image", detect_faces: bool = True
    ) -> tuple[int, Any]:
        """POST /predict; ``detect_faces=False``: the whole image is one face."""
        body, content_type = multipart(image, filename)
        query = "&".join(q for q, on in (("explain=true", explain), ("detect_faces=false", not detect_faces)) if on)
        return self.request("POST", f"/predict?{query}" if query else "/predict", body, {"Content-Type": content_type})

    def health(self) -> tuple[int, Any]:
        return self.request("GET", "/health")

    def close(self) -> None:
        self.connection.close()
