"""The pattern-matching view on the page (Debian's chromium + Playwright): three panels and the NCC of the pinned point.

Outside CI they skip when no browser is found; in CI (CI=true) they must run.
"""

from __future__ import annotations

import json

import pytest

from kikuchi.explore import explore

from .conftest import get

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(simulated_map):
    ex = explore(simulated_map, master_pattern="kinematical:ni")
    yield ex
    ex.stop()


def test_pinned_point_shows_experiment_simulation_difference_and_ncc(browser, server, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        panel = page.get_by_test_id("match-panel")
        assert panel.is_visible()
        page.evaluate("() => window.kikuchiExplorer.pin(2, 4)")
        page.wait_for_selector("[data-testid=match-panel][data-row='2'][data-col='4'][data-loaded='1']", timeout=15000)
        expected = json.loads(get(server.url + "api/match?row=2&col=4")[2])
        assert float(panel.get_attribute("data-ncc")) == pytest.approx(expected["ncc"], abs=1e-12)
        assert page.get_by_test_id("match-ncc").inner_text() == f"NCC {expected['ncc']:.4f}"
        info = page.get_by_test_id("match-info").inner_text()
        assert "row 2, col 4 · ni · Euler" in info and "from the map file" in info and "master pattern kinematical (ni), 20 kV, phase ni" in info
        for name in ("experiment", "simulation", "difference"):
            image = page.get_by_test_id(f"match-{name}")
            assert image.is_visible()
            size = image.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight]")
            assert size == [True, 240, 240], name
        page.get_by_test_id("match-panel").screenshot(path=str(artifacts / "match_panel.png"))
        # moving the pin moves the view; the pattern panel and the view show the same point
        page.get_by_test_id("map").focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_selector("[data-testid=match-panel][data-row='2'][data-col='3'][data-loaded='1']", timeout=15000)
        assert page.get_by_test_id("pattern").get_attribute("data-col") == "3"
        assert float(panel.get_attribute("data-ncc")) == pytest.approx(json.loads(get(server.url + "api/match?row=2&col=3")[2])["ncc"], abs=1e-12)
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
