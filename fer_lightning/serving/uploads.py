"""What a client uploads to the web server, turned into a decoded image without trusting any of it.

The body is parsed as it arrives and kept in memory only (Starlette's own form parser spools files over 1 MiB to a
temporary file): nothing a client sends is written to disk, and its file name is never looked at. Each step refuses bad
input with an HTTP status and one line: a body over the size limit (413; by its Content-Length before reading, and
while streaming), a request that is not multipart/form-data or a file that is no image (415), an image whose header
says it would decode to more than ``max_pixels`` (413, before a pixel is decoded: a PNG "bomb" of 20,000 x 20,000
pixels fits in a few hundred KB), a truncated or damaged image (422).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from fer_lightning.core.errors import UserInputError

# The formats both PIL (which checks the header and the whole file) and OpenCV (which decodes, as predict does) read;
# naming them also keeps PIL from handing EPS or PDF uploads to Ghostscript.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "PPM", "GIF")
FIELD = "file"  # the multipart field that holds the image


class Refused(UserInputError):
    """A request refused with an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def too_large(max_bytes: int) -> Refused:
    return Refused(413, f"the upload is over the limit of {max_bytes / 2**20:g} MB (max_upload_mb)")


def check_length(content_length: str | None, max_bytes: int) -> None:
    """Refuse a body whose declared length is over the limit, before reading any of it."""
    if content_length is None:
        return  # chunked: capped while it streams
    if not content_length.strip().isdigit():
        raise Refused(400, f"Content-Length: {content_length[:40]!r} is not a number of bytes")
    if int(content_length) > max_bytes:
        raise too_large(max_bytes)


class MultipartImage:
    """One multipart/form-data body fed chunk by chunk: keeps the bytes of the field ``file`` in memory, refuses the
    body once it passes ``max_bytes``."""

    def __init__(self, content_type: str | None, max_bytes: int) -> None:
        kind, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise Refused(415, f"send the image as multipart/form-data in a field named {FIELD!r}")
        self.max_bytes, self.received = max_bytes, 0
        self.file: bytearray | None = None
        self._in_file = False
        self._header: list[bytes] = [b"", b""]
        self._disposition = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
                "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._disposition, self._header = b"", [b"", b""]

    def _add_header(self, which: int, data: bytes) -> None:
        self._header[which] += data

    def _header_end(self) -> None:
        if self._header[0].lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        name = parse_options_header(self._disposition)[1].get(b"name")
        self._in_file = name == FIELD.encode()
        if self._in_file and self.file is not None:
            raise Refused(422, f"more than one file in the field {FIELD!r}: send one image per request")
        if self._in_file:
            self.file = bytearray()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.file += data[start:end]

    def _part_end(self) -> None:
        self._in_file = False

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_bytes:
            raise too_large(self.max_bytes)
        try:
            self.parser.write(chunk)
        except MultipartParseError as error:
            raise Refused(400, f"a malformed multipart/form-data body ({error})") from None

    def image_bytes(self) -> bytes:
        """The field's bytes once the whole body was fed."""
        try:
            self.parser.finalize()
        except MultipartParseError as error:
            raise Refused(400, f"a malformed multipart/form-data body ({error})") from None
        if self.file is None:
            raise Refused(422, f"no multipart field named {FIELD!r}: send the image in it")
        if not self.file:
            raise Refused(415, "the uploaded file is empty: not an image")
        return bytes(self.file)


def image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header, the file then checked whole (a truncated JPEG decodes without an error
    in OpenCV, as half grey): as predict's reader judges files. Refused before decoding when over ``max_pixels``."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:  # lazy: reads the header only
            width, height = image.size
            if width * height > max_pixels:
                raise Refused(
                    413, f"the image is {width}x{height} pixels, over the limit of {max_pixels:,} (max_pixels)"
                )
            image.load()
    except Refused:
        raise
    except Image.DecompressionBombError as error:  # PIL's own limit, at twice Image.MAX_IMAGE_PIXELS
        raise Refused(413, f"the image is too large to decode ({error})") from None
    except UnidentifiedImageError:
        raise Refused(415, f"the upload is not an image ({', '.join(IMAGE_FORMATS)})") from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or damaged data; SyntaxError: PIL's parsers
        raise Refused(422, f"a truncated or damaged image ({error})") from None
    return width, height


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """BGR pixels of an uploaded image as predict reads a file (cv2, EXIF-oriented, colour, 8 bits)."""
    width, height = image_size(data, max_pixels)
    if width == 0 or height == 0:
        raise Refused(422, f"the image is {width}x{height} pixels: nothing to look at")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Refused(415, "an image OpenCV cannot decode")
    return image
