"""End-to-end tests of the explorer page in a real browser (Debian's chromium + Playwright).

Outside CI they skip when no browser is found; in CI (CI=true) they must run.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import tifffile

import kikuchi
from kikuchi.explore import explore
from kikuchi.process import average_neighbours, process_patterns, remove_static_background

from .conftest import NAV_SHAPE, get

pytestmark = pytest.mark.browser


def fnv1a(data: bytes) -> str:
    """The page's checksum of the pattern bytes (FNV-1a, 32 bit)."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


@pytest.fixture(scope="module")
def server(map_file):
    ex = explore(map_file)
    yield ex
    ex.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    page.wait_for_function("() => document.querySelector('[data-testid=pattern]').dataset.row !== undefined")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def map_point(page, row: int, col: int) -> tuple[float, float]:
    box = page.get_by_test_id("map").bounding_box()
    rows, cols = NAV_SHAPE
    return box["x"] + (col + 0.5) * box["width"] / cols, box["y"] + (row + 0.5) * box["height"] / rows


def wait_for_pattern(page, row: int, col: int, npa: int = 0, signal: str = "raw") -> dict:
    page.wait_for_function(
        """([r, c, n, s]) => {
            const e = document.querySelector('[data-testid=pattern]');
            return e.dataset.row == r && e.dataset.col == c && e.dataset.npa == n && e.dataset.signal == s;
        }""",
        arg=[row, col, npa, signal],
        timeout=10000,
    )
    return page.evaluate("() => window.kikuchiExplorer.currentPattern()")


def show_and_leave(page, row: int, col: int) -> dict:
    """Show the pattern at (row, col), then take the mouse off the map (the pattern stays)."""
    page.mouse.move(*map_point(page, row, col))
    shown = wait_for_pattern(page, row, col)
    page.mouse.move(5, 5)
    return shown


def settled(page) -> dict:
    """The pattern shown once no request is pending."""
    page.wait_for_function("() => window.kikuchiExplorer.state.wanted === null && window.kikuchiExplorer.state.inflight === null")
    return page.evaluate("() => window.kikuchiExplorer.currentPattern()")


def as_array(shown: dict) -> np.ndarray:
    """The pattern the page holds, from its little-endian bytes."""
    dtype = np.dtype(shown["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(shown["bytes"]), dtype=dtype).reshape(shown["h"], shown["w"])


def test_hover_shows_the_patterns_of_the_api(page, map_file):
    shown = []
    for row, col in ((1, 2), (4, 6)):
        page.mouse.move(*map_point(page, row, col))
        shown.append(wait_for_pattern(page, row, col))
        assert page.get_by_test_id("coords").get_attribute("data-row") == str(row)
        assert f"row {row}, col {col}" in page.get_by_test_id("coords").inner_text()
        assert f"y {row * 0.5:.2f} µm, x {col * 0.25:.2f} µm" in page.get_by_test_id("coords").inner_text()
    with kikuchi.open(map_file) as m:
        expected = [m.pattern(1, 2), m.pattern(4, 6)]
    for s, e in zip(shown, expected):
        assert s["dtype"] == "uint16"
        np.testing.assert_array_equal(as_array(s), e)
        assert s["checksum"] == fnv1a(e.astype("<u2").tobytes())
    assert shown[0]["checksum"] != shown[1]["checksum"]
    assert page.get_by_test_id("pattern").get_attribute("data-checksum") == shown[1]["checksum"]
    assert int(page.get_by_test_id("histogram").get_attribute("data-total")) == 240 * 240


def test_neighbours_are_read_ahead_and_drawn_without_a_request(page, map_file):
    page.mouse.move(*map_point(page, 2, 2))
    wait_for_pattern(page, 2, 2)
    page.mouse.move(*map_point(page, 2, 3))  # moving right: (2, 4) is read first
    wait_for_pattern(page, 2, 3)
    page.wait_for_function("() => window.kikuchiExplorer.cached(2, 4) && window.kikuchiExplorer.cached(3, 3)")
    requests = page.evaluate("() => window.kikuchiExplorer.state.requests")
    page.mouse.move(*map_point(page, 2, 4))
    shown = wait_for_pattern(page, 2, 4)
    assert page.evaluate("() => window.kikuchiExplorer.state.requests") == requests  # no request for it
    assert page.evaluate("() => window.kikuchiExplorer.state.timings.at(-1).fetchMs") == 0
    with kikuchi.open(map_file) as m:
        np.testing.assert_array_equal(as_array(shown), m.pattern(2, 4))


def test_click_pins_and_arrow_keys_move_the_pin(page, server, map_file):
    page.mouse.click(*map_point(page, 2, 3))
    pinned = page.get_by_test_id("pinned")
    assert (pinned.get_attribute("data-row"), pinned.get_attribute("data-col")) == ("2", "3")
    page.wait_for_function("() => document.querySelector('[data-testid=pinned]').dataset.row === '2'")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    # the last key's handler may still be running when press() returns on a loaded machine
    page.wait_for_function("() => document.querySelector('[data-testid=pinned]').dataset.row === '4'", timeout=10_000)
    assert (pinned.get_attribute("data-row"), pinned.get_attribute("data-col")) == ("4", "4")
    shown = wait_for_pattern(page, 4, 4)
    with kikuchi.open(map_file) as m:
        np.testing.assert_array_equal(as_array(shown), m.pattern(4, 4))
    # hovering elsewhere shows that point; leaving the map returns to the pinned one
    page.mouse.move(*map_point(page, 0, 0))
    wait_for_pattern(page, 0, 0)
    page.mouse.move(5, 5)
    wait_for_pattern(page, 4, 4)
    assert "pinned: row 4, col 4" in pinned.inner_text()
    page.wait_for_function("() => true")
    for _ in range(250):  # the pin reaches the server (Explorer.pinned, for Jupyter users); up to 10 s on a loaded machine
        if server.pinned == (4, 4):
            break
        page.wait_for_timeout(40)
    assert server.pinned == (4, 4)


def test_slider_averages_neighbours(page, map_patterns):
    raw = show_and_leave(page, 3, 3)
    slider = page.get_by_test_id("npa-slider")
    assert slider.get_attribute("max") == "10"
    slider.fill("2")
    assert page.get_by_test_id("npa-value").inner_text() == "2"
    averaged = wait_for_pattern(page, 3, 3, npa=2)
    assert averaged["dtype"] == "float32" and averaged["checksum"] != raw["checksum"]
    np.testing.assert_array_equal(as_array(averaged), average_neighbours(map_patterns, n=2)[3, 3])
    assert "n = 2 (window 5 x 5)" in page.get_by_test_id("processing-list").inner_text()


def test_nlpar_radius_and_lambda(page, map_patterns):
    """NLPAR beside the neighbour averaging: a search radius and a lambda; the pattern of kikuchi.process.nlpar."""
    from kikuchi.process import nlpar

    show_and_leave(page, 2, 4)
    page.get_by_test_id("npa-slider").fill("1")
    page.get_by_test_id("nlpar-lambda").fill("0.8")
    page.get_by_test_id("nlpar-radius").fill("2")
    page.wait_for_function("() => document.querySelector('[data-testid=pattern]').dataset.nlpar == '2'")
    shown = settled(page)
    assert shown["npa"] == 0 and page.get_by_test_id("npa-slider").is_disabled()  # one averaging at a time
    np.testing.assert_array_equal(as_array(shown), nlpar(map_patterns, lam=0.8, search_radius=2)[2, 4])
    assert "search radius 2, λ 0.8000 (given)" in page.get_by_test_id("processing-list").inner_text()
    page.get_by_test_id("nlpar-lambda").fill("auto")
    page.get_by_test_id("nlpar-lambda").press("Enter")
    page.wait_for_function("() => document.querySelector('[data-testid=processing-list]').innerText.includes('auto on the 25 points')")
    page.get_by_test_id("nlpar-radius").fill("0")
    wait_for_pattern(page, 2, 4, npa=1)
    assert not page.get_by_test_id("npa-slider").is_disabled()


def test_signal_choice_shows_static_corrected_pattern(page, map_file):
    show_and_leave(page, 2, 2)
    page.get_by_test_id("signal-select").select_option("static")
    page.get_by_test_id("option-op").select_option("subtract")
    wait_for_pattern(page, 2, 2, signal="static")
    shown = settled(page)
    with kikuchi.open(map_file) as m:
        expected = remove_static_background(m.pattern(2, 2), m.static_background, operation="subtract", dtype=np.float32)
    np.testing.assert_array_equal(as_array(shown), expected)


def test_processing_form_gives_the_pipeline_pattern(page, map_file):
    show_and_leave(page, 1, 3)
    page.get_by_test_id("signal-select").select_option("processed")
    page.get_by_test_id("option-preset").select_option("indexing")
    assert page.get_by_test_id("option-binning").input_value() == "auto"
    assert page.get_by_test_id("option-clow").input_value() == "10"
    page.wait_for_function(
        "() => { const p = window.kikuchiExplorer.currentPattern(); return p && p.signal === 'processed' && p.w === 80; }"
    )
    shown = settled(page)
    with kikuchi.open(map_file) as m:
        expected = process_patterns(m.pattern(1, 3), "indexing", static_background=m.static_background)
    assert (shown["h"], shown["w"], shown["dtype"]) == (80, 80, "uint8")
    np.testing.assert_array_equal(as_array(shown), expected)
    assert "binning factor" in page.get_by_test_id("processing-list").inner_text()


def test_saved_tiff_equals_the_api_pattern(page, map_file, map_patterns, tmp_path):
    page.mouse.move(*map_point(page, 5, 1))
    wait_for_pattern(page, 5, 1)
    with page.expect_download() as download_info:
        page.get_by_test_id("save-tiff").click()
    download = download_info.value
    assert download.suggested_filename == "grains_r5_c1.tiff"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    saved = tifffile.imread(path)
    with kikuchi.open(map_file) as m:
        expected = m.pattern(5, 1)
    assert saved.dtype == np.uint16
    np.testing.assert_array_equal(saved, expected)
    # averaged: the exact float32 values
    page.get_by_test_id("npa-slider").fill("1")
    wait_for_pattern(page, 5, 1, npa=1)
    with page.expect_download() as download_info:
        page.get_by_test_id("save-tiff").click()
    download_info.value.save_as(tmp_path / "averaged.tiff")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "averaged.tiff"), average_neighbours(map_patterns, n=1)[5, 1])
    with page.expect_download() as download_info:
        page.get_by_test_id("save-png").click()
    assert download_info.value.suggested_filename == "grains_r5_c1_npa1.png"


def test_bad_request_gets_4xx_and_the_page_keeps_working(page, server, map_file):
    answer = page.evaluate(
        """async () => {
            const r = await fetch('/api/pattern?row=abc&col=1');
            return [r.status, (await r.json()).error];
        }"""
    )
    assert answer == [400, "parameter row='abc' is not an integer"]
    # the page asks for a point outside the map: the error is shown, nothing breaks
    page.evaluate("() => window.kikuchiExplorer.show(99, 0)")
    status = page.get_by_test_id("status")
    page.wait_for_function("() => document.querySelector('[data-testid=status]').classList.contains('error')")
    assert "404: map position (row 99, col 0) is outside the 6 x 8 map" in status.inner_text()
    page.mouse.move(*map_point(page, 3, 5))
    shown = wait_for_pattern(page, 3, 5)
    with kikuchi.open(map_file) as m:
        np.testing.assert_array_equal(as_array(shown), m.pattern(3, 5))
    assert get(server.url + "api/info")[0] == 200


def test_readout_of_the_base_map_under_the_mouse(page):
    page.get_by_test_id("map-select").select_option("data:MAD")
    page.wait_for_function("() => document.querySelector('[data-testid=map]').dataset.loaded === 'data:MAD'")
    page.mouse.move(*map_point(page, 5, 7))  # the last point: MAD 1.5
    page.wait_for_function("() => document.querySelector('[data-testid=map-value]').textContent.includes('MAD')")
    assert page.get_by_test_id("map-value").inner_text() == "under the mouse: MAD (°) 1.500"
    page.get_by_test_id("map-select").select_option("data:Phase")
    page.wait_for_function("() => document.querySelector('[data-testid=map]').dataset.loaded === 'data:Phase'")
    page.mouse.move(*map_point(page, 0, 1))  # point 1: phase 1
    page.wait_for_function("() => document.querySelector('[data-testid=map-value]').textContent.includes('phase')")
    assert page.get_by_test_id("map-value").inner_text() == "under the mouse: phase 1"


def test_base_map_choice_and_screenshot(page, artifacts):
    page.get_by_test_id("map-select").select_option("data:Phase")
    page.wait_for_function("() => document.querySelector('[data-testid=map]').dataset.loaded === 'data:Phase'")
    assert page.get_by_test_id("map-legend").locator(".swatch").count() == 3
    page.get_by_test_id("map-select").select_option("bse")
    page.wait_for_function("() => document.querySelector('[data-testid=map]').dataset.loaded === 'bse'")
    pixels = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=map]');
                   return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""
    )
    assert len(set(pixels[0::4])) > 1  # the BSE map is drawn, not blank
    assert float(page.get_by_test_id("map").evaluate("e => e.nextElementSibling.dataset.scaleBarUm")) > 0
    page.mouse.click(*map_point(page, 1, 5))
    page.mouse.move(*map_point(page, 4, 2))
    wait_for_pattern(page, 4, 2)
    page.screenshot(path=str(artifacts / "explorer.png"), full_page=True)
    assert (artifacts / "explorer.png").stat().st_size > 10000
    latencies = page.evaluate("() => window.kikuchiExplorer.latencies()")
    (artifacts / "latencies_ms.json").write_text(json.dumps(latencies))


def test_overlays_on_a_simulated_map_and_screenshot(browser, simulated_map, artifacts):
    """Detected bands and simulated band lines (hkl) drawn over a simulated Ni pattern, IPF base map."""
    with explore(simulated_map) as ex:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(ex.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        assert page.get_by_test_id("overlay-lines").is_visible() and page.get_by_test_id("overlay-bands").is_visible()
        page.get_by_test_id("map-select").select_option("ipf-z")
        page.wait_for_function("() => document.querySelector('[data-testid=map]').dataset.loaded === 'ipf-z'")
        page.get_by_test_id("signal-select").select_option("processed")
        page.get_by_test_id("overlay-bands").check()
        page.get_by_test_id("overlay-lines").check()
        box = page.get_by_test_id("map").bounding_box()
        page.mouse.click(box["x"] + 4.5 * box["width"] / 6, box["y"] + 1.5 * box["height"] / 4)
        page.wait_for_function(
            """() => { const o = document.querySelector('#pattern-overlay');
                       return o.dataset.drawn && o.dataset.drawn.includes('detected bands')
                              && o.dataset.drawn.includes('simulated band lines')
                              && document.querySelector('[data-testid=pattern]').dataset.signal === 'processed'
                              && document.querySelector('[data-testid=pattern]').dataset.col === '4'; }""",
            timeout=20000,
        )
        drawn = page.locator("#pattern-overlay").get_attribute("data-drawn")
        assert "9 detected bands" in drawn
        n_lines = int(drawn.split(", ")[1].split()[0])
        assert n_lines > 5
        page.screenshot(path=str(artifacts / "explorer_overlays.png"), full_page=True)
        context.close()
        assert errors == []
