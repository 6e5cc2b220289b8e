"""Server-level tests of the explorer: routes, binary patterns, downloads, bad requests."""

from __future__ import annotations

import io
import json
import socket
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

import kikuchi
from kikuchi.explore import MapSource, explore
from kikuchi.explore.encode import HEADER, decode_pattern, encode_pattern
from kikuchi.explore.source import PatternQuery, RequestError
from kikuchi.process import PRESETS, average_neighbours, process_patterns, remove_static_background

from .conftest import NAV_SHAPE, PATTERN_SHAPE, STEP_UM, get


def test_info_describes_the_map(explorer):
    status, headers, body = get(explorer.url + "api/info")
    assert status == 200 and headers["Content-Type"] == "application/json"
    info = json.loads(body)
    assert info["nav_shape"] == list(NAV_SHAPE)
    assert info["pattern_shape"] == list(PATTERN_SHAPE)
    assert info["step_um"] == list(STEP_UM)
    assert info["dtype"] == "uint16"
    assert info["has_pattern"] is None  # every point has a pattern
    names = [m["name"] for m in info["maps"]]
    assert names[0] == "bse" and "data:MAD" in names and "data:Phase" in names
    assert [s["name"] for s in info["signals"]][:2] == ["raw", "static"]


def test_page_and_static_files_are_served(explorer):
    status, headers, body = get(explorer.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    for testid in ("map", "pattern", "npa-slider", "signal-select", "save-tiff", "coords"):
        assert f'data-testid="{testid}"' in body.decode()
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for route, media in (("static/explorer.js", "text/javascript"), ("static/explorer.css", "text/css")):
        status, headers, body = get(explorer.url + route)
        assert status == 200 and headers["Content-Type"].startswith(media) and len(body) > 1000


@pytest.mark.parametrize("row, col", [(0, 0), (2, 5), (5, 7)])
def test_binary_pattern_equals_the_api_pattern(explorer, map_file, row, col):
    status, headers, body = get(explorer.url + f"api/pattern?row={row}&col={col}")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    h, w = PATTERN_SHAPE
    assert len(body) == HEADER.size + h * w * 2  # compact: uint16, no base64
    message = decode_pattern(body)
    assert (message.row, message.col, message.npa) == (row, col, 0)
    with kikuchi.open(map_file) as m:
        expected = m.pattern(row, col)
    assert message.pattern.dtype == np.uint16
    np.testing.assert_array_equal(message.pattern, expected)


def pattern_at(explorer, query: str):
    status, headers, body = get(explorer.url + "api/pattern?" + query)
    assert status == 200, body
    return decode_pattern(body), json.loads(headers["X-Pattern-Info"])


@pytest.mark.parametrize("op", ["divide", "subtract"])
def test_static_corrected_pattern_equals_the_api(explorer, map_file, op):
    with kikuchi.open(map_file) as m:
        expected = remove_static_background(m.pattern(3, 4), m.static_background, operation=op, dtype=np.float32)
    message, info = pattern_at(explorer, f"row=3&col=4&signal=static&op={op}")
    assert message.pattern.dtype == np.float32
    np.testing.assert_array_equal(message.pattern, expected)
    assert info == {"row": 3, "col": 4, "npa": 0, "signal": "static", "static_background": op}


@pytest.mark.parametrize("row, col, npa", [(2, 3, 1), (0, 0, 2), (5, 7, 3), (3, 4, 10)])
def test_averaging_equals_average_neighbours(explorer, map_patterns, row, col, npa):
    expected = average_neighbours(map_patterns, n=npa)[row, col]
    message, info = pattern_at(explorer, f"row={row}&col={col}&npa={npa}")
    assert (message.row, message.col, message.npa) == (row, col, npa)
    assert message.pattern.dtype == np.float32
    np.testing.assert_array_equal(message.pattern, expected)
    assert info["npa_window"] == f"{2 * npa + 1} x {2 * npa + 1}"


def test_averaged_static_corrected_pattern(explorer, map_file, map_patterns):
    with kikuchi.open(map_file) as m:
        background = m.static_background
    corrected = remove_static_background(map_patterns.reshape(-1, *PATTERN_SHAPE), background, dtype=np.float32)
    expected = average_neighbours(corrected.reshape(map_patterns.shape), n=2)[1, 6]
    np.testing.assert_array_equal(pattern_at(explorer, "row=1&col=6&npa=2&signal=static")[0].pattern, expected)


@pytest.mark.parametrize(
    "query, changes",
    [
        ("", {}),
        ("&preset=indexing", None),
        ("&binning=2&dynamic=subtract&sigma=6&clow=1&chigh=99&dtype=float32&mask=on", dict(binning=2, dynamic="subtract", sigma=6.0, clow=1.0, chigh=99.0, dtype="float32", mask=True)),
    ],
)
@pytest.mark.parametrize("npa", [0, 1])
def test_processed_pattern_equals_process_patterns(explorer, map_file, map_patterns, query, changes, npa):
    settings = PRESETS["indexing"] if changes is None else PRESETS["detailed"].replace(**changes)
    settings = settings.replace(npa=npa)
    with kikuchi.open(map_file) as m:
        background = m.static_background
    expected = process_patterns(map_patterns, settings, static_background=background)[2, 5]
    message, info = pattern_at(explorer, f"row=2&col=5&npa={npa}&signal=processed{query}")
    assert message.pattern.dtype == expected.dtype and message.pattern.shape == expected.shape
    np.testing.assert_array_equal(message.pattern, expected)
    assert info["processing"]["npa"] == npa and info["processing"]["dtype"] == settings.dtype


def test_tiff_download_decodes_exactly(explorer, map_file):
    status, headers, body = get(explorer.url + "api/pattern.tiff?row=4&col=1")
    assert status == 200 and headers["Content-Type"] == "image/tiff"
    assert headers["Content-Disposition"] == 'attachment; filename="grains_r4_c1.tiff"'
    image = tifffile.imread(io.BytesIO(body))
    with kikuchi.open(map_file) as m:
        expected = m.pattern(4, 1)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, expected)
    with tifffile.TiffFile(io.BytesIO(body)) as tif:
        assert json.loads(tif.pages[0].description) == {"file": "grains.h5", "row": 4, "col": 1, "npa": 0, "signal": "raw"}


def test_averaged_tiff_holds_the_exact_float_values(explorer, map_patterns):
    body = get(explorer.url + "api/pattern.tiff?row=2&col=2&npa=1")[2]
    image = tifffile.imread(io.BytesIO(body))
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, average_neighbours(map_patterns, n=1)[2, 2])


def test_processed_tiff_is_16_bit(explorer, map_file, map_patterns):
    status, headers, body = get(explorer.url + "api/pattern.tiff?row=0&col=1&signal=processed&preset=detailed")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="grains_r0_c1_processed.tiff"'
    image = tifffile.imread(io.BytesIO(body))
    with kikuchi.open(map_file) as m:
        expected = process_patterns(m.pattern(0, 1), "detailed", static_background=m.static_background)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, expected)


def test_png_download_is_a_scaled_view(explorer, map_file):
    status, headers, body = get(explorer.url + "api/pattern.png?row=1&col=1")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(body)))
    with kikuchi.open(map_file) as m:
        expected = m.pattern(1, 1).astype(float)
    assert image.shape == PATTERN_SHAPE and image.dtype == np.uint8
    assert image.min() == 0 and image.max() == 255
    assert np.corrcoef(image.ravel(), expected.ravel())[0, 1] > 0.999


def test_map_images(explorer):
    status, headers, body = get(explorer.url + "api/map?name=bse")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(body)))
    assert image.shape == NAV_SHAPE
    meta = json.loads(headers["X-Map-Info"])
    assert meta["name"] == "bse" and meta["vmin"] < meta["vmax"]
    status, headers, body = get(explorer.url + "api/map?name=data:Phase")
    assert status == 200
    assert np.asarray(Image.open(io.BytesIO(body))).shape == (*NAV_SHAPE, 3)
    assert [item["value"] for item in json.loads(headers["X-Map-Info"])["legend"]] == [0, 1, 2]


@pytest.mark.parametrize(
    "query, status, message",
    [
        ("api/pattern?row=1", 400, "parameter 'col' is missing"),
        ("api/pattern?row=a&col=1", 400, "parameter row='a' is not an integer"),
        ("api/pattern?row=1.5&col=1", 400, "parameter row='1.5' is not an integer"),
        ("api/pattern?row=99999999999&col=1", 400, "is not an integer"),
        ("api/pattern?row=6&col=0", 404, "map position (row 6, col 0) is outside the 6 x 8 map"),
        ("api/pattern?row=-1&col=0", 404, "is outside the 6 x 8 map"),
        ("api/pattern?row=0&col=8", 404, "is outside the 6 x 8 map"),
        ("api/pattern?row=0&col=0&npa=11", 400, "npa=11: neighbour averaging takes 0.."),
        ("api/pattern?row=0&col=0&npa=-1", 400, "neighbour averaging takes 0.."),
        ("api/pattern?row=0&col=0&signal=../../etc/passwd", 400, "is not a valid name"),
        ("api/pattern?row=0&col=0&signal=cooked", 400, "signal 'cooked' is not offered for this file"),
        ("api/pattern?row=0&col=0&op=subtract", 400, "signal 'raw' takes no option 'op'"),
        ("api/pattern?row=0&col=0&signal=processed&sigma=abc", 400, "sigma='abc' is not a number"),
        ("api/pattern?row=0&col=0&signal=processed&sigma=nan", 400, "sigma=nan: must lie in 0.1..1000"),
        ("api/pattern?row=0&col=0&signal=processed&sigma=0", 400, "sigma=0: must lie in 0.1..1000"),
        ("api/pattern?row=0&col=0&signal=processed&binning=7", 400, "binning='7': choose from auto, 1, 2, 3"),
        ("api/pattern?row=0&col=0&signal=processed&preset=fancy", 400, "preset='fancy': choose from indexing, detailed"),
        ("api/pattern?row=0&col=0&signal=processed&clow=60&chigh=40", 400, "processing parameters: contrast percentiles must satisfy"),
        ("api/pattern?row=0&col=0&signal=processed&dtype=/etc", 400, "parameter dtype='/etc' is not a valid value"),
        ("api/pattern?row=0&col=0&signal=static&op=multiply", 400, "op='multiply': choose from divide, subtract"),
        ("api/pattern?row=0&col=0&path=/etc/passwd", 400, "unknown parameter 'path'"),
        ("api/pattern?row=0&row=1&col=0", 400, "parameter 'row' given twice"),
        ("api/pattern.tiff?row=0&col=99", 404, "is outside the 6 x 8 map"),
        ("api/map?name=../../etc/passwd", 400, "is not a valid name"),
        ("api/map?name=nothing", 404, "no base map 'nothing'"),
        ("api/info?x=1", 400, "unknown parameter 'x'"),
        ("static/../source.py", 404, "no such page"),
        ("static/%2e%2e/source.py", 404, "no such page"),
        ("etc/passwd", 404, "no such page"),
        ("api/pattern?" + "a=1&" * 20, 400, "malformed query string"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_keeps_serving(explorer, query, status, message):
    got, headers, body = get(explorer.url + query)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert message in json.loads(body)["error"]
    assert get(explorer.url + "api/pattern?row=0&col=0")[0] == 200


def test_raw_http_garbage_does_not_stop_the_server(explorer):
    host, port = explorer._server.server_address[:2]
    for junk, status in (
        (b"\x00\x01\x02 garbage\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET / HTTP/9.9\r\n\r\n", b"505"),
        (b"GET / FOO/1.1\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\n", b"403"),  # no Host header
        (b"BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"405"),  # a method http.server does not know
        (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", b"505"),  # well formed, but not a version served here
    ):
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(200)
        assert reply.startswith(b"HTTP/1.1 " + status), (junk[:30], reply)
        assert b'{"error": ' in reply or b"Content-Type: application/json" in reply
    assert get(explorer.url + "api/pattern?row=1&col=2")[0] == 200


def test_methods_and_foreign_host_are_refused(explorer):
    status, _, body = get(explorer.url + "api/pattern?row=0&col=0", method="DELETE")
    assert status == 405 and "method DELETE is not allowed" in json.loads(body)["error"]
    status, _, body = get(explorer.url + "api/info", headers={"Host": "evil.example:80"})
    assert status == 403 and "only answers requests addressed to localhost" in json.loads(body)["error"]


def test_pin_records_the_point(explorer):
    status, _, body = get(explorer.url + "api/pin", method="POST", data=b'{"row": 2, "col": 3}', headers={"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == {"pinned": [2, 3]}
    assert explorer.pinned == (2, 3)
    for data, message in (
        (b'{"row": 2}', "expected {\"row\": ROW, \"col\": COL}"),
        (b'{"row": "2", "col": 3}', "with integers"),
        (b"not json", "body is not JSON"),
        (b'{"row": 60, "col": 3}', "outside the 6 x 8 map"),
        (b"[" * 1000, "body is not JSON (maximum recursion depth exceeded"),
    ):
        status, _, body = get(explorer.url + "api/pin", method="POST", data=data, headers={"Content-Type": "application/json"})
        assert status in (400, 404) and message in json.loads(body)["error"]
    status, _, body = get(explorer.url + "api/pin", method="POST", data=b'{"row": 1, "col": 1}', headers={"Content-Type": "text/plain"})
    assert status == 415 and "send the point as Content-Type: application/json" in json.loads(body)["error"]
    assert explorer.pinned == (2, 3)


def test_map_with_missing_points(tmp_path):
    """A map where some points have no pattern: 404 there, has_pattern in the info."""
    from kikuchi.io.mapstore import MapWriter

    path = tmp_path / "holes.h5"
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint8") as w:
        w.write(0, np.arange(6 * 20, dtype=np.uint8).reshape(6, 4, 5))
        index_map = np.array([[0, 1, -1], [3, 4, 5]])
        del w.header["indexmap"]
        w.header["indexmap"] = index_map
        w.data["MAD"] = np.arange(6, dtype=np.float32)
    with explore(path) as ex:
        info = json.loads(get(ex.url + "api/info")[2])
        assert info["has_pattern"] == [1, 1, 0, 1, 1, 1]
        status, _, body = get(ex.url + "api/pattern?row=0&col=2")
        assert status == 404 and "no pattern at map position (row 0, col 2)" in json.loads(body)["error"]
        p = decode_pattern(get(ex.url + "api/pattern?row=1&col=2")[2]).pattern
        assert p.dtype == np.uint8 and int(p[0, 0]) == 100
        assert [s["name"] for s in json.loads(get(ex.url + "api/info")[2])["signals"]] == ["raw", "processed"]  # no static background
        with kikuchi.open(path) as m:
            expected = average_neighbours(m.read(0, 6), n=1, index_map=m.index_map).reshape(2, 3, 4, 5)
        for row, col in ((0, 1), (1, 2)):  # the gap at (0, 2) is left out of the mean
            np.testing.assert_array_equal(decode_pattern(get(ex.url + f"api/pattern?row={row}&col={col}&npa=1")[2]).pattern, expected[row, col])
        # parameters a pattern of 4 x 5 pixels cannot take: a 400 that says why, not an internal error
        status, _, body = get(ex.url + "api/bands?row=0&col=0")
        assert status == 400 and "bands: BandDetector: pattern shape must be (h, w) with both at least 8 pixels" in json.loads(body)["error"]
        status, _, body = get(ex.url + "api/pattern?row=0&col=0&signal=processed")
        assert status == 400 and "processing parameters: support must be at least 1 pixel" in json.loads(body)["error"]
        status, _, body = get(ex.url + "api/map?name=data:MAD")
        assert status == 200, body
        image = np.asarray(Image.open(io.BytesIO(body)))
        assert image.shape == (2, 3, 2) and image[0, 2, 1] == 0 and image[0, 0, 1] == 255  # grey + alpha


def test_map_source_checks_requests(map_file):
    with MapSource(map_file) as source:
        with pytest.raises(RequestError, match=r"outside the 6 x 8 map") as err:
            source.pattern(PatternQuery(row=6, col=0))
        assert err.value.status == 404
        with pytest.raises(RequestError, match="signal 'x' is not offered"):
            source.pattern(PatternQuery(row=0, col=0, signal="x"))


def test_encode_rejects_bad_messages():
    with pytest.raises(ValueError, match="a pattern message holds one 2D pattern"):
        encode_pattern(np.zeros((2, 2, 2)), row=0, col=0)
    good = encode_pattern(np.zeros((2, 2), dtype=np.uint16), row=0, col=0)
    with pytest.raises(ValueError, match="shorter than its 24-byte header"):
        decode_pattern(good[:10])
    with pytest.raises(ValueError, match="not a kikuchi pattern message"):
        decode_pattern(b"XXXX" + good[4:])
    with pytest.raises(ValueError, match="expected 32 for 2 x 2 uint16"):
        decode_pattern(good[:-1])
    assert decode_pattern(encode_pattern(np.ones((2, 2)), row=0, col=0)).pattern.dtype == np.float32


def test_chunks_around_a_requested_point_are_read_ahead(map_file):
    with MapSource(map_file) as source:
        patterns = source._base
        assert patterns.chunk == 9  # 240 x 240 uint16: nine patterns per 1 MiB chunk
        assert patterns.chunks_near(2, 3, rows=1, cols=1) == [2, 1, 3]  # own chunk first, then rows 1 and 3
        source.pattern(PatternQuery(row=2, col=3))
        below = int(source.map.index_map[3, 3])  # one row down: another chunk
        for _ in range(200):
            if patterns.cache.get_many(np.array([below])):
                break
            time.sleep(0.01)
        assert patterns.cache.get_many(np.array([below])), "the chunk one row below was not read ahead"
        with kikuchi.open(map_file) as m:
            np.testing.assert_array_equal(patterns.cache.get_many(np.array([below]))[below], m.pattern(3, 3))
    assert patterns._prefetch._thread is None or not patterns._prefetch._thread.is_alive()


def test_map_of_processed_patterns_only(tmp_path):
    """A map file written by `kikuchi process` holds only 'Patterns': the explorer shows those."""
    from kikuchi.io.mapstore import MapWriter

    path = tmp_path / "processed.h5"
    patterns = np.arange(6 * 20, dtype=np.uint8).reshape(2, 3, 4, 5)
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint8", dataset="Patterns") as w:
        w.write_rows(0, patterns)
        w.set_processing({"preset": "indexing"})
    with explore(path) as ex:
        info = json.loads(get(ex.url + "api/info")[2])
        assert info["dataset"] == "Patterns"
        assert info["signals"] == [{"name": "stored", "label": "stored processed (Patterns)", "options": {}, "parameters": {"preset": "indexing"}}]
        np.testing.assert_array_equal(decode_pattern(get(ex.url + "api/pattern?row=1&col=0")[2]).pattern, patterns[1, 0])
        status, _, body = get(ex.url + "api/pattern?row=1&col=0&signal=raw")
        assert status == 400 and "signal 'raw' is not offered for this file (choose from stored)" in json.loads(body)["error"]
        averaged = decode_pattern(get(ex.url + "api/pattern?row=1&col=0&npa=1&signal=stored")[2]).pattern
        np.testing.assert_array_equal(averaged, average_neighbours(patterns, n=1)[1, 0])


def test_concurrent_requests_all_get_their_own_pattern(explorer, map_patterns):
    """Eight clients at once (as the browser's parallel connections): every answer is the right pattern."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    queries = [(int(r), int(c), int(n)) for r, c, n in zip(rng.integers(0, 6, 64), rng.integers(0, 8, 64), rng.integers(0, 3, 64))]
    averaged = {n: average_neighbours(map_patterns, n=n) for n in (1, 2)}

    def ask(q):
        r, c, n = q
        status, _, body = get(explorer.url + f"api/pattern?row={r}&col={c}&npa={n}")
        return status, decode_pattern(body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, queries))
    for (r, c, n), (status, message) in zip(queries, answers):
        assert status == 200 and (message.row, message.col, message.npa) == (r, c, n)
        np.testing.assert_array_equal(message.pattern, map_patterns[r, c] if n == 0 else averaged[n][r, c])


def test_threads_on_a_cold_source_with_a_tiny_cache(map_file, map_patterns):
    """Concurrent windows, read-ahead and cache evictions (2 MiB: 18 patterns) never mix patterns up."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    queries = [PatternQuery(row=int(r), col=int(c), npa=int(n)) for r, c, n in zip(rng.integers(0, 6, 48), rng.integers(0, 8, 48), rng.integers(0, 4, 48))]
    averaged = {n: average_neighbours(map_patterns, n=n) for n in (1, 2, 3)}
    with MapSource(map_file, cache_bytes=2 << 20) as source, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(source.pattern, queries))
    for q, got in zip(queries, results):
        np.testing.assert_array_equal(got, map_patterns[q.row, q.col] if q.npa == 0 else averaged[q.npa][q.row, q.col])
