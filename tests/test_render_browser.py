"""The HTML viewer in a real headless browser: click a block, its children appear; hover, pan, zoom.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``),
the ``selenium`` package (``pip install selenium``) and Graphviz's ``dot``; skipped, saying which
is missing, otherwise.  Selenium is pointed at the system browser and driver, so it never downloads
anything.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archdsl.backends import render as R
from archdsl.cli import main
from archdsl.pipeline import analyze

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def _browser_paths() -> tuple[str | None, str | None]:
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    return browser, driver


def _skip_reason() -> str | None:
    browser, driver = _browser_paths()
    if browser is None or driver is None:
        return ("headless browser test skipped: chromium and chromedriver not installed "
                "(apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "headless browser test skipped: the selenium package is not installed (pip install selenium)"
    if shutil.which("dot") is None:
        return "headless browser test skipped: Graphviz 'dot' not installed (apt-get install graphviz)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = _browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                "--allow-file-access-from-files"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "googlenet.html"
    assert main(["render", str(SPECS / "googlenet.arch"), "-o", str(out), "--depth", "1"]) == 0
    return out


def _load(driver, page: Path) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready")
    return json.loads(driver.find_element(By.ID, "archdsl-model").get_attribute("textContent"))


def _drawn_ids(driver, kind: str = "node") -> list[str]:
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('#canvas svg g.{kind}')).map(g => g.id)")


def _wait_ready(driver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                    in ("ready", "error"))
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "ready", \
        driver.find_element(By.ID, "status").text


def test_click_block_expands_and_collapses(driver, page: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = _load(driver, page)
    block = next(s for s in model["scopes"] if s["path"] == "inception3a")
    children = block["children"]
    assert block["id"] in _drawn_ids(driver)
    assert not set(children) & set(_drawn_ids(driver))

    driver.find_element(By.CSS_SELECTOR, f'g.node[id="{block["id"]}"]').click()
    WebDriverWait(driver, 60).until(lambda d: set(children) <= set(_drawn_ids(d)))
    _wait_ready(driver)
    assert block["id"] in _drawn_ids(driver, "cluster")  # now a labelled cluster
    assert block["id"] not in _drawn_ids(driver)

    # clicking the cluster's frame label collapses it again
    driver.find_element(By.CSS_SELECTOR, f'g.cluster[id="{block["id"]}"] > text').click()
    WebDriverWait(driver, 60).until(lambda d: block["id"] in _drawn_ids(d))
    _wait_ready(driver)
    assert not set(children) & set(_drawn_ids(driver))


def test_viewer_lays_out_what_python_draws(driver, page: Path) -> None:
    """The viewer's DOT walk (JavaScript) draws the same items as render.to_dot (Python)."""
    _load(driver, page)
    graph = analyze(SPECS / "googlenet.arch").graph
    model = R.build_model(graph)
    initial = R.initial_open(model, 1)
    embedded = _drawn_ids(driver)
    assert sorted(embedded) == sorted(R.drawn_items(model, initial))
    opened = {model.scope_by_path[p] for p in ("inception4a", "inception4a.branch2", "aux1")}
    for sid in sorted(opened):
        driver.execute_script("return window.archdslViewer.toggle(arguments[0])", sid)
        _wait_ready(driver)
    assert sorted(_drawn_ids(driver)) == sorted(R.drawn_items(model, initial | opened))
    assert sorted(_drawn_ids(driver, "cluster")) == sorted(opened)
    js_dot = driver.execute_script("return window.archdslViewer.buildDot()")
    py_dot = R.to_dot(model, initial | opened, tooltips=False)
    assert js_dot.count("->") == py_dot.count("->")
    assert js_dot.count("lhead=") == py_dot.count("lhead=")
    svg = driver.execute_script("return new XMLSerializer().serializeToString(document.querySelector('#canvas svg'))")
    ET.fromstring(svg)  # well-formed


def test_hover_shows_details(driver, page: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _load(driver, page)
    graph = analyze(SPECS / "googlenet.arch").graph
    nid = graph.by_path("maxpool1")
    ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, f'g.node[id="n{nid}"]')).perform()
    details = driver.find_element(By.ID, "details")
    WebDriverWait(driver, 10).until(lambda d: details.is_displayed())
    text = details.text
    for expected in ("maxpool1", "kernel=3", "64×56×56", "params", "MACs", "receptive field", "11×11"):
        assert expected in text, text
    model = R.build_model(graph)
    sid = model.scope_by_path["inception4b"]
    ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, f'g.node[id="{sid}"]')).perform()
    WebDriverWait(driver, 10).until(lambda d: "inception4b" in details.text)
    assert "425,232" in details.text and "click to expand" in details.text


def test_wheel_zooms_and_drag_pans(driver, page: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _load(driver, page)
    canvas = driver.find_element(By.ID, "canvas")

    def viewbox() -> list[float]:
        return [float(v) for v in driver.execute_script(
            "return document.querySelector('#canvas svg').getAttribute('viewBox')").split()]

    before = viewbox()
    driver.execute_script("""
        const c = document.getElementById('canvas'), r = c.getBoundingClientRect();
        c.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: r.left + 200, clientY: r.top + 200,
                                                 bubbles: true, cancelable: true}));""")
    zoomed = viewbox()
    assert zoomed[2] < before[2] * 0.8  # zoomed in
    ActionChains(driver).move_to_element_with_offset(canvas, 0, 0).click_and_hold().move_by_offset(120, 80) \
        .release().perform()
    panned = viewbox()
    assert panned[0] < zoomed[0] and panned[1] < zoomed[1]
    assert panned[2] == pytest.approx(zoomed[2])
