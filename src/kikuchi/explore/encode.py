"""Byte formats of the explorer: the binary pattern message, TIFF and PNG.

A pattern travels from the server to the page as one binary message (media
type ``application/octet-stream``), never as base64 JSON. It is a 24-byte
header followed by the pixels, row-major and little-endian::

    offset  size  field
    0       4     magic b"KPAT"
    4       1     format version (1)
    5       1     dtype code: 1 uint8, 2 uint16, 3 float32
    6       1     neighbours averaged (0..10)
    7       1     reserved (0)
    8       4     height, uint32
    12      4     width, uint32
    16      4     map row, int32
    20      4     map column, int32
    24      ...   height * width pixels

The header length is a multiple of every item size, so the page views the
pixels in place (``new Uint16Array(buffer, 24, h * w)``).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HEADER",
    "DTYPE_CODES",
    "PatternMessage",
    "encode_pattern",
    "decode_pattern",
    "pattern_tiff",
    "image_png",
]

MAGIC = b"KPAT"
VERSION = 1
HEADER = struct.Struct("<4sBBBBIIii")
#: dtype of the pixels -> code in the header
DTYPE_CODES: dict[str, int] = {"uint8": 1, "uint16": 2, "float32": 3}
_CODE_DTYPES = {code: np.dtype(name).newbyteorder("<") for name, code in DTYPE_CODES.items()}


@dataclass(frozen=True)
class PatternMessage:
    """A decoded binary pattern message."""

    pattern: np.ndarray
    row: int
    col: int
    npa: int


def wire_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a pattern of ``dtype`` travels as: uint8, uint16 or float32.

    >>> wire_dtype(np.dtype("uint16")).name, wire_dtype(np.dtype("float64")).name
    ('uint16', 'float32')
    """
    dtype = np.dtype(dtype)
    return dtype if dtype.name in DTYPE_CODES else np.dtype(np.float32)


def encode_pattern(pattern: np.ndarray, *, row: int, col: int, npa: int = 0) -> bytes:
    """One pattern (h, w) as a binary message (header + little-endian pixels).

    uint8 and uint16 patterns travel as they are, any other dtype as float32.

    >>> msg = encode_pattern(np.arange(6, dtype=np.uint16).reshape(2, 3), row=4, col=5)
    >>> len(msg), decode_pattern(msg).pattern.tolist()
    (36, [[0, 1, 2], [3, 4, 5]])
    """
    pattern = np.asarray(pattern)
    if pattern.ndim != 2:
        raise ValueError(f"a pattern message holds one 2D pattern, got shape {pattern.shape}")
    dtype = wire_dtype(pattern.dtype)
    h, w = pattern.shape
    header = HEADER.pack(MAGIC, VERSION, DTYPE_CODES[dtype.name], int(npa), 0, h, w, int(row), int(col))
    return header + np.ascontiguousarray(pattern, dtype=dtype.newbyteorder("<")).tobytes()


def decode_pattern(message: bytes) -> PatternMessage:
    """Read a binary pattern message back (used by tests and benchmarks).

    Raises
    ------
    ValueError
        When the bytes are not a complete pattern message.
    """
    if len(message) < HEADER.size:
        raise ValueError(f"pattern message of {len(message)} bytes is shorter than its {HEADER.size}-byte header")
    magic, version, code, npa, _, h, w, row, col = HEADER.unpack_from(message)
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"not a kikuchi pattern message (magic {magic!r}, version {version})")
    if code not in _CODE_DTYPES:
        raise ValueError(f"pattern message with unknown dtype code {code}")
    dtype = _CODE_DTYPES[code]
    expected = HEADER.size + h * w * dtype.itemsize
    if len(message) != expected:
        raise ValueError(f"pattern message of {len(message)} bytes, expected {expected} for {h} x {w} {dtype.name}")
    pattern = np.frombuffer(message, dtype=dtype, offset=HEADER.size).reshape(h, w).astype(dtype.newbyteorder("="))
    return PatternMessage(pattern=pattern, row=row, col=col, npa=npa)


def pattern_tiff(pattern: np.ndarray, *, description: str = "") -> bytes:
    """The exact pattern as TIFF bytes: 8/16-bit integers as they are, others as float32.

    >>> import tifffile
    >>> p = np.array([[0, 65535], [7, 300]], dtype=np.uint16)
    >>> np.array_equal(tifffile.imread(io.BytesIO(pattern_tiff(p))), p)
    True
    """
    import tifffile

    pattern = np.asarray(pattern)
    dtype = wire_dtype(pattern.dtype)
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        np.ascontiguousarray(pattern, dtype=dtype),
        photometric="minisblack",
        description=description or None,
        metadata=None,
    )
    return buffer.getvalue()


def display_uint8(image: np.ndarray, *, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Scale an image linearly to 0..255 between ``low`` and ``high`` (default: min and max).

    NaN and infinities become 0. A flat image becomes mid-grey.

    >>> display_uint8(np.array([1.0, 2.0, 3.0])).tolist()
    [0, 128, 255]
    """
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    lo = float(np.min(values[finite])) if low is None else float(low)
    hi = float(np.max(values[finite])) if high is None else float(high)
    if hi <= lo:
        out = np.full(values.shape, 128, dtype=np.uint8)
    else:
        scaled = np.where(finite, (values - lo) * (255.0 / (hi - lo)), 0.0)
        out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    out[~finite] = 0
    return out


def image_png(image: np.ndarray, *, alpha: np.ndarray | None = None) -> bytes:
    """PNG bytes of an 8-bit grey (rows, cols) or RGB (rows, cols, 3) image, with optional alpha mask.

    >>> png = image_png(np.zeros((2, 3), dtype=np.uint8))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image_png takes 8-bit images, got {image.dtype}")
    if alpha is not None:
        a = np.where(np.asarray(alpha, dtype=bool), 255, 0).astype(np.uint8)
        if image.ndim == 2:
            pil = Image.fromarray(np.stack([image, a], axis=-1), mode="LA")
        else:
            pil = Image.fromarray(np.concatenate([image, a[..., None]], axis=-1), mode="RGBA")
    else:
        pil = Image.fromarray(image, mode="L" if image.ndim == 2 else "RGB")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()
