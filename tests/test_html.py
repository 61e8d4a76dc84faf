"""``--emit html``: every bundled spec gives one self-contained page; a real headless
Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium) opens it and the
DOM is checked: a row per top-level block, an SVG node per row, hovering a node highlights
its row, expanding, sorting, no console errors, nothing fetched; a screenshot is taken.

CI installs Chromium (.ci/run); without it the browser test fails rather than skips.
"""

from __future__ import annotations

import shutil
import tempfile
from html.parser import HTMLParser

import pytest
from archlang.backends.html import html_page
from click.testing import CliRunner
from conftest import bundled_names, bundled_params

from archlang.analysis import analyze
from archlang.analysis.grouping import group_nodes
from archlang.cli.main import main
from archlang.compiler import compile_spec

BUNDLED = bundled_names()
GOOGLENET_ROWS = [
    "input", "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a",
    "inception5b", "avgpool", "flatten", "dropout", "fc", "aux1", "aux2",
]  # fmt: skip
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


class _Page(HTMLParser):
    """What a test needs from the markup: group rows, SVG node titles, external references."""

    def __init__(self):
        super().__init__()
        self.rows, self.titles, self.refs, self.tags = [], [], [], set()
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and attrs.get("class") == "group":
            self.rows.append(attrs["data-node"])
        self._in_title = tag == "title" and "svg" in self.tags
        for key in ("src", "href", "xlink:href", "action"):
            if key in attrs:
                self.refs.append(attrs[key])

    def handle_data(self, data):
        if self._in_title and data.strip():
            self.titles.append(data.strip())
        self._in_title = False


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.mark.parametrize("spec", BUNDLED)
def test_every_bundled_spec_gives_a_self_contained_page(spec, tmp_path):
    out = tmp_path / f"{spec}.html"
    result = CliRunner().invoke(main, [spec, "--emit", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    page = _parse(text)
    analysis = analyze(spec)
    groups = group_nodes(analysis, 1) + [g for a in analysis.aux_totals for g in group_nodes(analysis, 1, aux=a)]
    assert page.rows == [g.id for g in groups]
    assert set(page.rows) <= set(page.titles)  # every row has its diagram node
    assert page.refs == [] and "<link" not in text and "url(" not in text and "@import" not in text
    assert "<script src" not in text and "<svg" in text


def test_googlenet_rows_and_lint_findings():
    text = html_page(compile_spec("googlenet", {"variant": "paper"}))
    assert _parse(text).rows == [*GOOGLENET_ROWS[:3], "norm1", *GOOGLENET_ROWS[3:5], "norm2", *GOOGLENET_ROWS[5:]]
    assert "class='finding' data-code='IN102'" in text  # pooling before expanding (archc lint)


def test_names_are_escaped(tmp_path):
    spec = tmp_path / "x.arch"
    spec.write_text('network N { input 3x8x8\n  "<b>&x": conv(4, 3) }\n')
    text = html_page(compile_spec(str(spec)))
    assert "<b>&x" not in text and "&lt;b&gt;&amp;x" in text


# ---- in a real browser ------------------------------------------------------------------


def _find(*names):
    return next((path for path in map(shutil.which, names) if path), None)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("headless Chromium is needed: apt-get install chromium chromium-driver (CI: .ci/run)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="archlang-chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_page_in_headless_chromium(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = tmp_path / "googlenet.html"
    page.write_text(html_page(compile_spec("googlenet")))
    browser.get(page.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#costs tr.group")
    assert [r.get_attribute("data-node") for r in rows] == GOOGLENET_ROWS
    nodes = {
        n.find_element(By.TAG_NAME, "title").get_attribute("textContent"): n
        for n in browser.find_elements(By.CSS_SELECTOR, "#diagram svg g.node")
    }
    assert set(GOOGLENET_ROWS) <= set(nodes)

    # hovering a node highlights exactly its row (and the node)
    ActionChains(browser).move_to_element(nodes["inception4a"]).perform()
    highlighted = browser.find_elements(By.CSS_SELECTOR, "#costs tr.group.hl")
    assert [r.get_attribute("data-node") for r in highlighted] == ["inception4a"]
    assert "hl" in nodes["inception4a"].get_attribute("class")
    ActionChains(browser).move_to_element(nodes["conv1"]).perform()
    assert [r.get_attribute("data-node") for r in browser.find_elements(By.CSS_SELECTOR, "tr.group.hl")] == ["conv1"]

    # expanding a block shows its layers: conv1 is a conv unit of 3 layers (conv, bn, relu)
    def visible_layers():
        return [r for r in browser.find_elements(By.CSS_SELECTOR, "#costs tr.layer") if r.is_displayed()]

    assert visible_layers() == []
    browser.find_element(By.CSS_SELECTOR, "tr.group[data-node='conv1'] button.toggle").click()
    assert [r.find_element(By.TAG_NAME, "th").text for r in visible_layers()] == ["conv", "bn", "relu"]

    # sorting by params, descending: inception5b holds the most (1,347,040; Table 1: ~1388K)
    sort = browser.find_element(By.CSS_SELECTOR, "th[data-key='params'] button.sort")
    sort.click()
    sort.click()
    order = [r.get_attribute("data-node") for r in browser.find_elements(By.CSS_SELECTOR, "#costs tr.group")]
    assert order[0] == "inception5b" and set(order[-2:]) == {"aux1", "aux2"}  # aux heads stay last
    th = browser.find_element(By.CSS_SELECTOR, "th[data-key='params']")
    assert th.get_attribute("aria-sort") == "descending"

    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.get_log("browser") == []  # no console errors (or anything else)
    shot = tmp_path / "googlenet.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_console_errors_are_seen(browser, tmp_path):
    # the console check above can fail: a page that logs an error shows up in the log
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><script>console.error('broken'); undefinedFunction();</script>")
    browser.get(page.as_uri())
    levels = {entry["level"] for entry in browser.get_log("browser")}
    assert "SEVERE" in levels


@pytest.mark.parametrize("spec", bundled_params())  # the heavy specs: slow
def test_every_bundled_spec_in_chromium(browser, spec, tmp_path):
    from selenium.webdriver.common.by import By

    analysis = analyze(spec)
    expected = [g.id for g in group_nodes(analysis, 1)] + list(analysis.aux_totals)
    page = tmp_path / f"{spec}.html"
    page.write_text(html_page(compile_spec(spec)))
    browser.get(page.as_uri())
    rows = [r.get_attribute("data-node") for r in browser.find_elements(By.CSS_SELECTOR, "#costs tr.group")]
    titles = {t.get_attribute("textContent") for t in browser.find_elements(By.CSS_SELECTOR, "#diagram g.node > title")}
    assert rows == expected and set(rows) <= titles
    browser.find_element(By.ID, "expand-all").click()
    layers = browser.find_elements(By.CSS_SELECTOR, "#costs tr.layer")
    assert len(layers) == sum(1 for _ in analysis.nodes if _ not in rows) and all(r.is_displayed() for r in layers)
    assert browser.get_log("browser") == []
    browser.save_screenshot(str(tmp_path / f"{spec}.png"))
