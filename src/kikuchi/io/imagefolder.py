"""Pattern-image sources: a folder or a zip of one image per map point.

Three naming schemes give each image its map position (row, col):

``aztec``
    ``{row}_{col}.tif(f)`` as exported by Oxford AZtec, e.g. ``12_7.tiff`` is
    row 12, column 7. A common prefix is allowed (``Map Data 1_12_7.tiff``,
    ``Image_12_7.tiff``): the last two ``_``-separated integers are row and
    column; every file must carry the same prefix.
``edax``
    ``..._x{X}y{Y}.ext`` as exported by EDAX OIM (also ``x{X}_y{Y}``): X is the
    column, Y the row.
    Integers are indices; decimals are beam coordinates in µm and are divided
    by the step (``step_um`` or the smallest spacing found).
``sorted``
    Any names, in natural sort order (``p2`` before ``p10``), filling the map
    row by row; needs the map shape.

Images are 8- or 16-bit greyscale TIFF (tifffile), PNG or BMP (Pillow). A zip
is read member by member, never extracted to disk. Files whose name contains
``background`` are not patterns (a static background stored beside them) and
are left out.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi._args import check_number, check_pair, check_path

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "ImageSource",
    "ImageSourceError",
    "describe_image_source",
    "natural_key",
    "open_image_source",
    "parse_shape",
    "read_image",
]

_logger = logging.getLogger(__name__)

#: File extensions read as pattern images (lower case).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".bmp")
_TIFF = (".tif", ".tiff")
_RAW = (*_TIFF, ".bmp")  # formats whose pixels can lie uncompressed at one place (_RawLayout)
_LEARNED = (*_RAW, ".png")  # formats read as bytes and decoded by a layout learned from the first file (_PngLayout)
SCHEMES = ("aztec", "edax", "sorted")

# the prefix is empty or ends in a non-digit, so "Map1_0_0" is prefix "Map1_", row 0, col 0
_AZTEC = re.compile(r"^(?P<prefix>(?:.*\D)?)(?P<row>\d+)_(?P<col>\d+)$")
_EDAX = re.compile(r"^(?P<prefix>(?:.*[_\-\s.])?)x(?P<x>\d+(?:\.\d+)?)[_\-]?y(?P<y>\d+(?:\.\d+)?)$", re.IGNORECASE)
_DIGITS = re.compile(r"(\d+)")


class ImageSourceError(ValueError):
    """A folder or zip of pattern images that cannot be made into a map."""


class ImageReadError(ImageSourceError):
    """One image that cannot be read, or that differs from the others."""


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value.

    >>> sorted(["p10.tif", "p2.tif", "p1.tif"], key=natural_key)
    ['p1.tif', 'p2.tif', 'p10.tif']
    """
    parts = tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name))
    return (parts, name)  # ties ("01_1", "1_01") in plain string order


def parse_shape(text: str) -> tuple[int, int]:
    """Parse a map shape ``ROWSxCOLS`` (also ``ROWS,COLS``).

    >>> parse_shape("172x196")
    (172, 196)
    """
    if not isinstance(text, str):
        raise TypeError(f"map shape {text!r}: expected text ROWSxCOLS, e.g. '172x196'")
    parts = re.split(r"\s*[x×X,]\s*", text.strip())
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"map shape {text!r}: expected ROWSxCOLS, e.g. 172x196") from None
    if rows <= 0 or cols <= 0:
        raise ValueError(f"map shape {text!r}: rows and columns must be positive")
    return rows, cols


# -- decoding ---------------------------------------------------------------


def _as_grey(arr: np.ndarray, label: str) -> np.ndarray:
    """Greyscale 2D array from a decoded image; RGB with equal channels is accepted."""
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise ImageReadError(f"{label}: colour image ({arr.shape[-1]} channels); EBSD patterns must be greyscale")
        arr = rgb[..., 0]
    if arr.ndim != 2:
        raise ImageReadError(f"{label}: expected one greyscale image, found an array of shape {arr.shape}")
    if arr.dtype == np.int32 or arr.dtype == np.int64:  # Pillow mode "I" (16-bit PNG in older Pillow)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(f"{label}: 32-bit image with values outside 0..65535; expected 8- or 16-bit patterns")
        arr = arr.astype(np.uint16)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    return arr


def _decode(data: bytes | Path, suffix: str, label: str) -> np.ndarray:
    """Decode one image (file path or bytes) to a 2D array."""
    try:
        if suffix in _TIFF:
            import tifffile

            src = io.BytesIO(data) if isinstance(data, bytes) else data
            arr = tifffile.imread(src, key=0)
            if np.size(arr) == 0:
                raise ValueError("no image data in the TIFF")
        else:
            from PIL import Image

            src = io.BytesIO(data) if isinstance(data, bytes) else data
            with Image.open(src) as img:
                if img.mode in ("P", "PA"):
                    img = img.convert("RGBA" if img.mode == "PA" else "RGB")
                elif img.mode == "LA":
                    img = img.convert("L")
                arr = np.asarray(img)
    except ImageReadError:
        raise
    except Exception as exc:  # decoders raise many kinds; all mean "unreadable"
        raise ImageReadError(f"{label}: unreadable image ({type(exc).__name__}: {exc})") from exc
    return _as_grey(np.asarray(arr), label)


@dataclass(frozen=True)
class _RawLayout:
    """Where the pixels of an uncompressed greyscale image file lie, learned from one file of a folder.

    A TIFF of one strip (as AZtec writes them) or an 8-bit BMP (as EDAX does:
    rows bottom-up, each padded to 4 bytes, a grey palette). A file of the
    same size whose bytes outside the pixel data equal those of the learned
    file (header, tags, palette: the whole structure) has its pixels at the
    same place, in the same type and shape: they are taken from the bytes read
    (one read, no parsing, no GIL held for long). Any other file is decoded by
    tifffile or Pillow, as always.
    """

    size: int
    offset: int
    nbytes: int
    head: bytes
    tail: bytes
    dtype: np.dtype
    shape: tuple[int, int]
    stride: int  # bytes of one stored row (with its padding)
    bottom_up: bool

    @classmethod
    def learn(cls, data: bytes, arr: np.ndarray, suffix: str) -> _RawLayout | None:
        """The layout of ``data``, a file that decoded to ``arr``; None when it has none that can be reused."""
        if arr.ndim != 2:
            return None
        h, w = int(arr.shape[0]), int(arr.shape[1])
        try:
            found = _tiff_pixels(data) if suffix in _TIFF else _bmp_pixels(data) if suffix == ".bmp" else None
        except Exception:  # noqa: BLE001 - anything odd: no fast path, the decoder reads every file
            return None
        if found is None:
            return None
        offset, nbytes, dtype, stride, bottom_up = found
        if stride * h != nbytes or stride < w * dtype.itemsize or offset + nbytes > len(data):
            return None
        layout = cls(len(data), offset, nbytes, data[:offset], data[offset + nbytes :], dtype, (h, w), stride, bottom_up)
        got = layout.pixels(data)
        return layout if got is not None and np.array_equal(got, arr) else None

    def rows(self, raw: np.ndarray) -> np.ndarray:
        """The images (n, h, w) in this layout's dtype, a view of ``raw``: (n, nbytes) stored pixel bytes."""
        h, w = self.shape
        images = raw.reshape(-1, h, self.stride)[:, :, : w * self.dtype.itemsize].view(self.dtype)
        return images[:, ::-1] if self.bottom_up else images

    def pixels(self, data: bytes) -> np.ndarray | None:
        """The image of ``data`` when it has this layout, else None."""
        if len(data) != self.size:
            return None
        view = memoryview(data)
        if view[: self.offset] != self.head or view[self.offset + self.nbytes :] != self.tail:
            return None
        image = self.rows(np.frombuffer(data, dtype=np.uint8, count=self.nbytes, offset=self.offset))[0]
        plain = self.dtype.isnative and not self.bottom_up and self.stride == self.shape[1] * self.dtype.itemsize
        return image if plain else np.array(image, dtype=self.dtype.newbyteorder("="))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class _PngLayout:
    """Greyscale PNGs of one header (signature and IHDR: size, 8 or 16 bits, no interlacing), learned from one file.

    A file that starts with the same 33 bytes is decoded here: its IDAT
    chunks (CRC-32 checked) inflated by _h5.inflate and its rows unfiltered by a
    compiled kernel (about 25 us a 60 x 60 pattern, against 200 through
    Pillow, most of it Python). Anything else in it (another critical chunk,
    a damaged or short stream, an unknown filter) leaves it to Pillow, which
    decodes it or says what is wrong.
    """

    header: bytes
    dtype: np.dtype
    shape: tuple[int, int]

    @classmethod
    def learn(cls, data: bytes, arr: np.ndarray) -> _PngLayout | None:
        if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
            return None
        width, height, depth, colour, method, filtering, interlace = struct.unpack_from(">IIBBBBB", data, 16)
        if colour != 0 or depth not in (8, 16) or method or filtering or interlace or arr.shape != (height, width):
            return None
        layout = cls(bytes(data[:33]), np.dtype(np.uint8 if depth == 8 else ">u2"), (int(height), int(width)))
        try:
            got = layout.pixels(data)
        except Exception:  # noqa: BLE001 - anything odd: Pillow decodes every file
            return None
        return layout if got is not None and np.array_equal(got, arr) else None

    def pixels(self, data: bytes) -> np.ndarray | None:
        """The image of ``data`` when it is a PNG of this header that decodes cleanly here, else None."""
        if data[:33] != self.header:
            return None
        from kikuchi.io._h5 import inflate  # ISA-L where installed (10 against zlib's 19 us a 60 x 60 PNG)
        from kikuchi.io._kernels import png_unfilter  # numba: imported only for PNG folders

        view, n, pos, parts = memoryview(data), len(data), 33, []
        while True:
            if pos + 12 > n:
                return None  # no IEND: Pillow's verdict
            length, kind = struct.unpack_from(">I4s", data, pos)
            end = pos + 12 + length
            if end > n:
                return None
            if kind == b"IDAT":
                if zlib.crc32(view[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
                    return None
                parts.append(view[pos + 8 : end - 4])
            elif kind == b"IEND":
                break
            elif not kind[0] & 0x20:  # a critical chunk other than these (PLTE, ...)
                return None
            pos = end
        h, w = self.shape
        row_bytes = w * self.dtype.itemsize
        try:
            raw = inflate(b"".join(parts))
        except Exception:  # noqa: BLE001 - zlib.error, isal's IsalError: a damaged stream, for Pillow to name
            return None
        if len(raw) != h * (row_bytes + 1):
            return None
        image = png_unfilter(raw, h, row_bytes, self.dtype.itemsize)
        if image is None:
            return None
        return image.view(self.dtype).reshape(self.shape).astype(self.dtype.newbyteorder("="), copy=False)


def _tiff_pixels(data: bytes) -> tuple[int, int, np.dtype, int, bool] | None:
    """(offset, bytes, dtype, row stride, bottom-up) of the pixels of a one-page, one-strip uncompressed greyscale TIFF."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        page = tf.pages[0]
        if (
            len(tf.pages) != 1 or int(page.compression) != 1 or page.samplesperpixel != 1 or int(page.predictor) != 1
            or int(page.fillorder) != 1 or len(page.dataoffsets) != 1 or not page.is_contiguous
        ):  # fmt: skip
            return None
        dtype = np.dtype(page.dtype).newbyteorder(tf.byteorder)
        nbytes = int(page.databytecounts[0])
        return int(page.dataoffsets[0]), nbytes, dtype, nbytes // max(1, int(page.shape[0])), False


def _bmp_pixels(data: bytes) -> tuple[int, int, np.dtype, int, bool] | None:
    """(offset, bytes, dtype, row stride, bottom-up) of the pixels of an uncompressed 8-bit BMP (a palette image)."""
    if data[:2] != b"BM" or len(data) < 34:
        return None
    offset, header = struct.unpack_from("<II", data, 10)
    if header < 40:  # OS/2 core headers: left to Pillow
        return None
    width, height, _planes, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if bits != 8 or compression != 0 or width <= 0 or height == 0:
        return None
    colours = struct.unpack_from("<I", data, 46)[0] or 256
    table = np.frombuffer(data, dtype=np.uint8, count=4 * colours, offset=14 + header).reshape(colours, 4)[:, :3]
    if colours != 256 or np.any(table != np.arange(256, dtype=np.uint8)[:, None]):
        return None  # not the grey palette whose indices are the grey values: Pillow maps every file's colours
    stride = (width + 3) // 4 * 4
    return int(offset), stride * abs(height), np.dtype(np.uint8), stride, height > 0


def _readv(fd: int, buffers: Sequence[np.ndarray]) -> int:
    """``os.readv`` where the system has none (Windows): one read, then split into ``buffers``."""
    data = os.read(fd, sum(b.nbytes for b in buffers))
    start = 0
    for buf in buffers:
        part = data[start : start + buf.nbytes]
        buf[: len(part)] = np.frombuffer(part, dtype=np.uint8)
        start += len(part)
    return len(data)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one greyscale image: TIFF, PNG, BMP or a whitespace-separated text array.

    Used for static backgrounds and single patterns.

    Parameters
    ----------
    path
        Image file (``.tif``, ``.tiff``, ``.png``, ``.bmp``) or text file
        (``.txt``, ``.dat``, ``.csv``) with one image row per line.

    Returns
    -------
    numpy.ndarray
        2D array in the file's dtype (float64 for text).

    Raises
    ------
    ImageReadError
        The file cannot be read or is not one greyscale image.
    """
    path = check_path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: a folder, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return _decode(path, suffix, str(path))
    try:
        arr = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=2)
    except ValueError as exc:
        raise ImageReadError(f"{path}: not an image and not a text array of numbers ({exc})") from exc
    return arr


# -- naming schemes ------------------------------------------------------------


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0]


def _one_prefix(path: Path, names: Sequence[str], matches: Sequence[Any], scheme: str) -> str:
    """The prefix all names share; ImageSourceError naming the prefixes, their counts and an example of each otherwise."""
    prefixes = {m.group("prefix") for m in matches}
    if len(prefixes) == 1:
        return prefixes.pop()
    counts = {p: [n for n, m in zip(names, matches) if m.group("prefix") == p] for p in prefixes}
    listed = ", ".join(f"{p!r} ({len(c)} files, e.g. {min(c, key=natural_key)})" for p, c in sorted(counts.items()))
    raise ImageSourceError(
        f"{path}: images named {scheme} with different prefixes: {listed}: two maps in one {'zip' if path.is_file() else 'folder'}? "
        "Put one map per folder"
    )


def _parse_aztec(names: Sequence[str], path: Path = Path(".")) -> tuple[np.ndarray, np.ndarray, str] | None:
    matches = [_AZTEC.match(_stem(n)) for n in names]
    if not all(matches):
        return None
    prefix = _one_prefix(path, names, matches, "ROW_COL")
    rows = np.array([int(m.group("row")) for m in matches], dtype=np.int64)  # type: ignore[union-attr]
    cols = np.array([int(m.group("col")) for m in matches], dtype=np.int64)  # type: ignore[union-attr]
    return rows, cols, prefix


def _coordinate_index(values: list[str], step: float | None, axis: str) -> np.ndarray:
    """Indices from EDAX x/y fields: integers as they are, decimals divided by the step."""
    if not any("." in v for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    x = np.array([float(v) for v in values])
    x0 = x.min()
    if step is None:
        diffs = np.diff(np.unique(x))
        step = float(diffs.min()) if diffs.size else 1.0
    idx = (x - x0) / step
    rounded = np.rint(idx)
    if np.abs(idx - rounded).max(initial=0) > 0.05:
        raise ImageSourceError(f"EDAX {axis} coordinates are not multiples of the step {step:g} µm; give the step with --step")
    return rounded.astype(np.int64)


def _parse_edax(
    names: Sequence[str], step_um: tuple[float, float] | None, path: Path = Path(".")
) -> tuple[np.ndarray, np.ndarray, str] | None:
    matches = [_EDAX.match(_stem(n)) for n in names]
    if not all(matches):
        return None
    prefix = _one_prefix(path, names, matches, "..._x#y#")
    cols = _coordinate_index([m.group("x") for m in matches], None if step_um is None else step_um[1], "x")  # type: ignore[union-attr]
    rows = _coordinate_index([m.group("y") for m in matches], None if step_um is None else step_um[0], "y")  # type: ignore[union-attr]
    return rows, cols, prefix


# -- the source ------------------------------------------------------------------


class ImageSource:
    """A folder or zip of pattern images with their map positions.

    Use :func:`open_image_source`. ``names`` are the pattern files, in map
    order (row, then column) when the names carry positions (``aztec``,
    ``edax``; ``rows``/``cols`` hold them), else in natural sort order
    (``sorted``: positions follow from the map shape; ``rows``/``cols`` are
    None). :meth:`read` and :meth:`read_into` are safe to call from several
    threads.
    """

    def __init__(
        self,
        path: Path,
        container: str,
        names: list[str],
        scheme: str,
        rows: np.ndarray | None,
        cols: np.ndarray | None,
        prefix: str = "",
        ignored: Sequence[str] = (),
        members: dict[str, zipfile.ZipInfo] | None = None,
    ):
        self.path = path
        self.container = container
        self.names = names
        self.scheme = scheme
        self.rows = rows
        self.cols = cols
        self.prefix = prefix
        self.ignored = list(ignored)
        self._local = threading.local()
        self._handles: list[zipfile.ZipFile] = []
        self._lock = threading.Lock()
        #: The layout of the first TIFF, BMP or PNG decoded, None until then, False when it has none to reuse.
        self._layout: _RawLayout | _PngLayout | None | bool = None
        # a zip's members in the order of names, where they lie: (header offset, stored bytes, bytes, CRC-32, method, flags),
        # as numbers rather than ZipInfo objects (about 500 bytes each, a GB for a zip of 2,000,000 patterns)
        self._members: np.ndarray | None = None
        if members:
            self._members = np.array(
                [
                    (m.header_offset, m.compress_size, m.file_size, m.CRC, m.compress_type, m.flag_bits)
                    for m in (members[name] for name in names)
                ],
                dtype=np.int64,
            ).reshape(len(names), 6)
        self._fd: int | None = None  # the zip, for os.pread from every thread

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"<ImageSource {self.path.name}: {len(self)} images, {self.scheme} naming ({self.container})>"

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the zip handles opened by reading threads."""
        with self._lock:
            for handle in self._handles:
                handle.close()
            self._handles.clear()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self._local = threading.local()

    def label(self, i: int) -> str:
        """The file of image ``i`` as shown in messages: ``folder/12_7.tiff`` or ``maps.zip:12_7.tiff``."""
        if self.container == "zip":
            return f"{self.path}:{self.names[i]}"
        return str(self.path / self.names[i])

    def _zip(self) -> zipfile.ZipFile:
        handle = getattr(self._local, "zip", None)
        if handle is None:
            handle = zipfile.ZipFile(self.path)
            self._local.zip = handle
            with self._lock:
                self._handles.append(handle)
        return handle

    def _member(self, i: int) -> bytes:
        """The bytes of zip member ``i``: stored or deflated ones read with ``os.pread`` at the offset the zip's
        directory gives and checked against its CRC-32 (zipfile's reader costs 45 us of Python a member);
        anything else (encrypted, other methods, no ``os.pread``) through zipfile."""
        pread = getattr(os, "pread", None)
        if self._members is None or pread is None:
            return self._zip().read(self.names[i])
        offset, packed, size, crc, method, flags = (int(v) for v in self._members[i])
        if flags & 0x1 or method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return self._zip().read(self.names[i])
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        header = pread(self._fd, 30, offset)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local file header at byte {offset}")
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        data = pread(self._fd, packed, offset + 30 + name_len + extra_len)
        if len(data) != packed:
            raise EOFError(f"member cut short: {len(data)} of {packed} bytes")
        if method == zipfile.ZIP_DEFLATED:
            data = zlib.decompress(data, -15)  # a raw deflate stream, as zipfile reads it
        if len(data) != size or zlib.crc32(data) != crc:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {self.names[i]!r}")
        return data

    def read(self, i: int) -> np.ndarray:
        """Decode image ``i`` (index into :attr:`names`) to a 2D array."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(self.names):
            raise IndexError(f"{self.path}: image {i!r} is not one of the {len(self.names)} images (0..{len(self.names) - 1})")
        name = self.names[i]
        suffix = "." + name.rsplit(".", 1)[-1].lower()
        if self.container == "zip":
            try:
                data = self._member(i)
            except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, OSError, ...: all mean a damaged member
                raise ImageReadError(f"{self.label(i)}: cannot read from the zip ({type(exc).__name__}: {exc})") from exc
        elif suffix in _LEARNED:
            try:
                data = (self.path / name).read_bytes()
            except OSError as exc:
                raise ImageReadError(f"{self.label(i)}: cannot read ({exc.strerror or exc})") from exc
        else:
            return _decode(self.path / name, suffix, self.label(i))
        if suffix not in _LEARNED:
            return _decode(data, suffix, self.label(i))
        layout = self._layout
        if layout:
            arr = layout.pixels(data)  # type: ignore[union-attr]
            if arr is not None:
                return arr
        arr = _decode(data, suffix, self.label(i))
        if layout is None:
            learned = _PngLayout.learn(data, arr) if suffix == ".png" else _RawLayout.learn(data, arr, suffix)
            with self._lock:
                if self._layout is None:
                    self._layout = learned if learned is not None else False
        return arr

    def read_into(self, indices: Sequence[int], out: np.ndarray) -> np.ndarray:
        """Read the images ``indices`` of a folder of TIFFs or BMPs of one layout straight into ``out[k]``.

        Each file is read with one system call: its pixels into its row of
        ``out`` (or of a scratch array, for BMP's padded bottom-up rows), its
        header, tags or palette into a scratch row beside it. The bytes outside
        the pixels are then checked against the learned layout
        (:class:`_RawLayout`) for all files at once. About 3 us of Python a
        file instead of 15 (TIFF through tifffile) or 250 (BMP through Pillow).

        Parameters
        ----------
        indices
            Images (indices into :attr:`names`).
        out
            C-contiguous (len(indices), h, w) array in the images' (native) dtype.

        Returns
        -------
        numpy.ndarray
            bool per image: True where ``out[k]`` holds it. False for every
            image that is not a file of the learned layout, could not be read,
            or when nothing has been learned yet (a zip, PNGs, the first call
            before :meth:`read`): read those with :meth:`read`, which decodes
            them and raises the error that names the file.
        """
        done = np.zeros(len(indices), dtype=bool)
        layout = self._layout
        if (
            not isinstance(layout, _RawLayout) or self.container != "folder" or not len(indices) or not out.flags.c_contiguous
            or out.shape[1:] != layout.shape or out.dtype != layout.dtype.newbyteorder("=")
        ):  # fmt: skip
            return done
        root, names = os.path.join(str(self.path), ""), self.names  # paths made here: a list of them would double the names' memory
        n = len(indices)
        h, w = layout.shape
        in_place = layout.dtype.isnative and not layout.bottom_up and layout.stride == w * layout.dtype.itemsize
        head = np.empty((n, layout.offset), dtype=np.uint8)
        tail = np.empty((n, layout.size - layout.offset - layout.nbytes + 1), dtype=np.uint8)  # one byte more: a longer file
        pixels = out.reshape(n, -1).view(np.uint8) if in_place else np.empty((n, layout.nbytes), dtype=np.uint8)
        got = np.zeros(n, dtype=np.int64)
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
        readv = getattr(os, "readv", None) or _readv  # os.readv: not on Windows
        for k, i in enumerate(indices):
            try:
                fd = os.open(root + names[i], flags)
            except OSError:
                continue  # read() raises the error naming the file
            try:
                got[k] = readv(fd, (head[k], pixels[k], tail[k]))
            except OSError:
                pass
            finally:
                os.close(fd)
        done = got == layout.size
        done &= (head == np.frombuffer(layout.head, dtype=np.uint8)).all(axis=1)
        done &= (tail[:, :-1] == np.frombuffer(layout.tail, dtype=np.uint8)).all(axis=1)
        if not in_place and done.any():
            out[done] = layout.rows(pixels[done])  # rows in order, padding dropped, bytes swapped to native values
        return done

    def inferred_shape(self) -> tuple[int, int] | None:
        """Map shape from the positions in the names (max row + 1, max col + 1), when they carry them."""
        if self.rows is None or self.cols is None or not len(self):
            return None
        return int(self.rows.max()) + 1, int(self.cols.max()) + 1

    def positions(self, nav_shape: tuple[int, int] | None = None, *, shape_source: str = "") -> tuple[tuple[int, int], np.ndarray]:
        """Check the images against a map and give their storage order.

        Parameters
        ----------
        nav_shape
            Map (rows, cols); inferred from the names when None (not for
            ``sorted`` naming).
        shape_source
            Where ``nav_shape`` came from, for messages (e.g. ``"--ctf map.ctf"``).

        Returns
        -------
        nav_shape
            The map shape.
        order
            ``order[k]`` is the image (index into :attr:`names`) of the map
            point with row-major index ``k``.

        Raises
        ------
        ImageSourceError
            Count mismatch, a position outside the map, a duplicate or a
            missing position; the message names the files and positions.
        """
        n = len(self)
        if nav_shape is not None:
            nav_shape = check_pair(nav_shape, "nav_shape")
        where = f" (from {shape_source})" if shape_source else ""
        if self.rows is None or self.cols is None:
            if nav_shape is None:
                raise ImageSourceError(
                    f"{self.path}: the {n} image names carry no map positions ({self.scheme} naming); "
                    "give the map shape with --shape ROWSxCOLS (or --ctf/--ang)"
                )
            rows, cols = nav_shape
            if n != rows * cols:
                more = "more" if n > rows * cols else "fewer"
                extra = f"; first image beyond the map: {self.label(rows * cols)}" if n > rows * cols else ""
                raise ImageSourceError(
                    f"{self.path}: {n} images but the {rows} x {cols} map{where} has {rows * cols} points "
                    f"({more} images than map points){extra}"
                )
            return (rows, cols), np.arange(n, dtype=np.int64)

        if nav_shape is None:
            nav_shape = self.inferred_shape()
            assert nav_shape is not None
        rows, cols = nav_shape
        r, c = self.rows, self.cols
        outside = np.flatnonzero((r >= rows) | (c >= cols) | (r < 0) | (c < 0))
        count_note = f"{n} images for the {rows} x {cols} map of {rows * cols} points"
        if outside.size:
            i = int(outside[0])
            raise ImageSourceError(
                f"{self.label(i)}: map position (row {r[i]}, col {c[i]}) lies outside the {rows} x {cols} map{where}; "
                f"{outside.size} image(s) outside ({count_note})"
            )
        flat = r * cols + c
        order = np.full(rows * cols, -1, dtype=np.int64)
        sort = np.argsort(flat, kind="stable")
        dup = np.flatnonzero(np.diff(flat[sort]) == 0)
        if dup.size:
            a, b = int(sort[dup[0]]), int(sort[dup[0] + 1])
            raise ImageSourceError(
                f"duplicate map position (row {r[a]}, col {c[a]}): {self.label(a)} and {self.label(b)} "
                f"({dup.size} duplicate(s); {count_note})"
            )
        order[flat] = np.arange(n)
        missing = np.flatnonzero(order < 0)
        if missing.size:
            shown = ", ".join(f"(row {k // cols}, col {k % cols})" for k in missing[:5])
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise ImageSourceError(
                f"{self.path}: no image for map position {shown}{more} ({count_note}, {missing.size} missing)"
            )
        return (rows, cols), order


def _list_folder(path: Path) -> list[str]:
    """The files of a folder (links to files included), hidden ones left out.

    ``os.scandir`` knows from the directory entries which names are files: no
    ``stat`` per file (0.04 against 0.44 s for a folder of 100,000 patterns).
    """
    with os.scandir(path) as entries:
        return [e.name for e in entries if not e.name.startswith(".") and e.is_file()]


def _list_zip(path: Path) -> dict[str, zipfile.ZipInfo]:
    """The members of a zip that can be patterns (no folders, no hidden or macOS files), by name."""
    try:
        with zipfile.ZipFile(path) as zf:
            return {
                info.filename: info
                for info in zf.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and not info.filename.rsplit("/", 1)[-1].startswith(".")
            }
    except zipfile.BadZipFile as exc:
        raise ImageSourceError(f"{path}: not a readable zip file ({exc})") from exc


def open_image_source(
    path: str | os.PathLike,
    *,
    naming: str | None = None,
    step_um: tuple[float, float] | None = None,
) -> ImageSource:
    """Open a folder or zip of pattern images and work out their map positions.

    Parameters
    ----------
    path
        Folder or ``.zip`` file.
    naming
        ``'aztec'``, ``'edax'``, ``'sorted'``, or None to recognise it from
        the names (aztec, then edax, else sorted).
    step_um
        (row, col) step, used only for EDAX names holding µm coordinates.

    Returns
    -------
    ImageSource

    Raises
    ------
    ImageSourceError
        No images, mixed extensions, names that do not follow the requested
        scheme, or a corrupt zip.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for r in range(2):
    ...     for c in range(3):
    ...         tifffile.imwrite(d / f"{r}_{c}.tiff", np.full((4, 5), 10 * r + c, np.uint16))
    >>> src = open_image_source(d)
    >>> src.scheme, src.inferred_shape()
    ('aztec', (2, 3))
    >>> int(src.read(src.names.index("1_2.tiff"))[0, 0])
    12
    """
    path = check_path(path)
    if naming is not None and naming not in SCHEMES:
        raise ValueError(f"naming {naming!r}: expected one of {', '.join(SCHEMES)}")
    if step_um is not None:
        if isinstance(step_um, (str, bytes)) or np.ndim(step_um) != 1 or len(step_um) != 2:
            raise TypeError(f"step_um={step_um!r}: expected (row step, column step) in µm")
        step_um = (check_number(step_um[0], "step_um", positive=True, unit="µm"), check_number(step_um[1], "step_um", positive=True, unit="µm"))
    members = None
    if path.is_dir():
        container, all_names = "folder", _list_folder(path)
    elif path.is_file():
        if not zipfile.is_zipfile(path):
            raise ImageSourceError(f"{path}: neither a folder nor a readable zip file of pattern images")
        members = _list_zip(path)
        container, all_names = "zip", list(members)
    else:
        raise FileNotFoundError(f"{path}: no such folder or zip file")

    images = [n for n in all_names if "." + n.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS and "." in n]
    backgrounds = {n for n in images if "background" in n.rsplit("/", 1)[-1].lower()}
    ignored = sorted(backgrounds, key=natural_key)
    names = [n for n in images if n not in backgrounds]
    if ignored:
        _logger.info("%s: not taken as patterns: %s", path, ", ".join(ignored))
    if not names:
        raise ImageSourceError(f"{path}: no pattern images ({', '.join(IMAGE_EXTENSIONS)}) in this {container}")
    exts = {n.rsplit(".", 1)[-1].lower().replace("tiff", "tif") for n in names}
    if len(exts) > 1:
        raise ImageSourceError(f"{path}: images of several formats ({', '.join(sorted(exts))}); keep one format per map")

    parsed = None
    scheme = "sorted"
    if naming in (None, "aztec"):
        parsed = _parse_aztec(names, path)
        scheme = "aztec"
    if parsed is None and naming in (None, "edax"):
        parsed = _parse_edax(names, step_um, path)
        scheme = "edax"
    if parsed is not None:  # map order, row then column (names that share a position: by name)
        rows, cols, prefix = parsed
        by_position = np.lexsort((cols, rows))
        r, c = rows[by_position], cols[by_position]
        if np.any((r[1:] == r[:-1]) & (c[1:] == c[:-1])):  # duplicates, refused later: named in an order of their own
            by_position = np.array(sorted(range(len(names)), key=lambda k: (rows[k], cols[k], names[k])), dtype=np.int64)
        names = [names[k] for k in by_position]
        parsed = rows[by_position], cols[by_position], prefix
    else:
        names.sort(key=natural_key)
    if parsed is None and naming is None:
        _refuse_partly_positioned(path, names)
    if parsed is None:
        if naming in ("aztec", "edax"):
            pattern = "ROW_COL.tiff" if naming == "aztec" else "..._x{X}y{Y}.ext"
            stems = [n for n in names if not (_AZTEC if naming == "aztec" else _EDAX).match(_stem(n))]
            raise ImageSourceError(
                f"{path}: {len(stems)} image name(s) do not follow the {naming} scheme {pattern}, e.g. {stems[0]}"
            )
        return ImageSource(path, container, names, "sorted", None, None, ignored=ignored, members=members)
    rows, cols, prefix = parsed
    return ImageSource(path, container, names, scheme, rows, cols, prefix=prefix, ignored=ignored, members=members)


def _refuse_partly_positioned(path: Path, names: Sequence[str]) -> None:
    """Names of which at least half carry map positions (ROW_COL or x#y#) and some do not, or in two schemes: refused, naming them.

    Read in sorted order, such a folder would put images at the wrong map
    points without a word.
    """
    aztec = [n for n in names if _AZTEC.match(_stem(n))]
    edax = [n for n in names if n not in aztec and _EDAX.match(_stem(n))]
    odd = [n for n in names if n not in aztec and n not in edax]
    if len(aztec) + len(edax) < max(1, len(odd)):
        return
    if aztec and edax:
        minor, form = (edax, "..._x#y#") if len(edax) <= len(aztec) else (aztec, "ROW_COL")
        what = f"mix two naming schemes: {len(minor)} are named {form} ({', '.join(minor[:3])}{' ...' if len(minor) > 3 else ''})"
        what += f" and {len(odd)} give no position ({', '.join(odd[:3])}{' ...' if len(odd) > 3 else ''})" if odd else ""
    else:
        form = "ROW_COL" if aztec else "..._x#y#"
        shown = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
        what = f"give map positions as {form} but {len(odd)} do not ({shown})"
    raise ImageSourceError(
        f"{path}: of {len(names)} image names, {len(aztec) + len(edax) if aztec and edax else len(names) - len(odd)} "
        f"{what}: move the odd ones out, or pass naming='sorted' (--naming sorted) to read every name in sorted order"
    )


def describe_image_source(path: str | os.PathLike | ImageSource, *, nav_shape: tuple[int, int] | None = None) -> dict[str, Any]:
    """A JSON-ready summary of an image folder or zip (used by ``kikuchi info``).

    Reads only the first image (pattern size and dtype). A source opened
    here is closed here; one passed in is left open.
    """
    if isinstance(path, ImageSource):
        return _describe(path, nav_shape)
    check_path(path)
    with open_image_source(path) as src:
        return _describe(src, nav_shape)


def _describe(src: ImageSource, nav_shape: tuple[int, int] | None) -> dict[str, Any]:
    first = src.read(0)
    shape = nav_shape or src.inferred_shape()
    out: dict[str, Any] = {
        "path": str(src.path),
        "kind": f"image {src.container}",
        "count": len(src),
        "naming": src.scheme,
        "prefix": src.prefix,
        "first": src.names[0],
        "last": src.names[-1],
        "format": src.names[0].rsplit(".", 1)[-1].lower(),
        "nav_shape": list(shape) if shape else None,
        "pattern_shape": list(first.shape),
        "dtype": str(first.dtype),
        "ignored": src.ignored,
    }
    if shape is not None:
        try:
            src.positions(shape)
            out["complete"] = True
        except ImageSourceError as exc:
            out["complete"] = False
            out["problem"] = str(exc)
    else:
        out["complete"] = None
        n = len(src)
        root = math.isqrt(n)
        out["note"] = "names carry no map positions: give --shape ROWSxCOLS to convert" + (
            f" (a square map would be {root} x {root})" if root * root == n else ""
        )
    return out
