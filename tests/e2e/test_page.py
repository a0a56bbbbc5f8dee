"""The web page in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the service started as
users start it serves the page; digits are drawn on the canvas with real mouse input (down, moves, up), and the page
must show what the network predicts, outline active filters, and load a clicked filter's deconvolution. A second
test hosts the page on another origin against a service with API keys on."""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx
import pytest
from PIL import Image

from service.attribution import METHODS
from service.importer import main as import_model
from service.pictures.labels import ROW_LABEL_SIZE
from tests.api.test_imported_deconvolution import with_erf
from tests.helpers import ROOT, link_shipped_models
from tests.importer.builders import save
from tests.server import running_service

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'")

CHROMIUM = Path(os.environ.get("CONVLENS_CHROMIUM", "/usr/bin/chromium"))
STATIC = ROOT / "service" / "api" / "static"
# The README's picture is refreshed on purpose by make screenshot (CONVLENS_SCREENSHOT=docs/screenshot.png); a plain
# run leaves the tree clean.
SCREENSHOT = Path(os.environ.get("CONVLENS_SCREENSHOT", Path(tempfile.gettempdir()) / "convlens-screenshot.png"))
FIRST_LOAD_SCREENSHOT = Path(tempfile.gettempdir()) / "convlens-first-load.png"  # the page before any drawing
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
)

# Strokes in the 280x280 canvas's own pixels; each list is one pointer-down ... pointer-up.
ONE = [[(150, 45), (146, 100), (141, 160), (137, 235)]]
SEVEN = [[(75, 60), (140, 57), (205, 55), (185, 110), (160, 165), (137, 235)]]
LINE = [[(140, 50), (138, 230)]]  # one straight stroke


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def draw(page, strokes: list[list[tuple[float, float]]], state: Literal["ready", "error"] = "ready") -> str:
    """Draw on the canvas with real mouse input, one down-moves-up sequence per stroke, wait until the page has
    answered, and return the digit it shows. ``ready``: wait for the answer to the last stroke (each stroke end
    sends one request; the page numbers them); ``error``: wait until the page shows an error instead."""
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / 280
    before = int(page.locator("body").get_attribute("data-seq"))
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=6)
        page.mouse.up()
    if state == "ready":
        expected = before + len(strokes)
        wait_until(
            page,
            "n => Number(document.body.dataset.shown) === n && document.body.dataset.state === 'ready'",
            arg=expected,
        )
    else:
        wait_until(page, "state => document.body.dataset.state === state", arg=state)
    return predicted(page)


def wait_until(page, expression: str, arg: object = None) -> None:
    """Poll ``expression`` from outside the page until it is true. Playwright's ``wait_for_function`` polls with
    ``eval`` inside the page, which the page's Content-Security-Policy (no 'unsafe-eval') rightly refuses."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for: {expression}"
        page.wait_for_timeout(50)


def predicted(page) -> str:
    return page.locator("#digit").inner_text()


def cell_centre(page, layer: str, filter: int) -> tuple[float, float]:
    """Where filter ``filter`` of ``layer`` sits on screen, from the grid geometry the API returned."""
    img = page.locator(f'.layer[data-layer="{layer}"] img.grid')
    g = {
        key: float(img.get_attribute(f"data-{key}"))
        for key in ("columns", "tile-width", "tile-height", "pad", "width", "height")
    }
    img.scroll_into_view_if_needed()
    box = img.bounding_box()
    column, row = filter % int(g["columns"]), filter // int(g["columns"])
    x = (column * (g["tile-width"] + g["pad"]) + g["tile-width"] / 2) * box["width"] / g["width"]
    y = (row * (g["tile-height"] + g["pad"]) + g["tile-height"] / 2) * box["height"] / g["height"]
    return box["x"] + x, box["y"] + y


def save_screenshot(page, path: Path) -> None:
    """A full-page screenshot, reduced to a 256-colour palette (the page is mostly flat colours and greys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def visible_images(page) -> list[dict]:
    """Every <img> a user can see (displayed, not visibility:hidden, not transparent), with its decoded width."""
    return page.evaluate(
        """() => [...document.images]
            .filter(img => img.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}))
            .map(img => ({id: img.id, src: img.getAttribute("src"), naturalWidth: img.naturalWidth}))"""
    )


def test_the_page_on_first_load_shows_no_broken_image(page):
    with running_service() as (base, _):
        page.goto(f"{base}/")
        page.wait_for_load_state("networkidle")
        save_screenshot(page, FIRST_LOAD_SCREENSHOT)
        broken = [image for image in visible_images(page) if image["naturalWidth"] == 0]
        assert broken == []
        assert page.locator("#detail-placeholder").is_visible() and not page.locator("#deconv").is_visible()


def test_drawn_digits_are_recognised_and_a_clicked_filter_shows_its_deconvolution(page):
    with running_service() as (base, _):
        page.goto(f"{base}/")
        assert page.title().startswith("convlens")
        assert page.locator("#digit").inner_text() == "–"

        assert draw(page, ONE) == "1"

        page.click("#clear")
        assert predicted(page) == "–"
        assert draw(page, SEVEN) == "7"
        assert page.locator("#bars li.top .label").inner_text() == "7"
        for layer in ("conv1", "conv2", "pool"):
            card = page.locator(f'.layer[data-layer="{layer}"]')
            assert card.locator("img.grid").evaluate("img => img.complete && img.naturalWidth > 0")
            assert card.get_attribute("data-active"), f"no active filter outlined in {layer}"
        assert page.locator("#reconstruction").evaluate("img => img.naturalWidth") == 28

        # hover: the tooltip names the filter and its norm
        active = [int(k) for k in page.locator('.layer[data-layer="conv2"]').get_attribute("data-active").split(",")]
        filter = active[0]
        page.mouse.move(*cell_centre(page, "conv2", filter))
        tooltip = page.locator("#tooltip")
        assert tooltip.is_visible()
        assert f"conv2 · filter {filter} · norm" in tooltip.inner_text() and "active" in tooltip.inner_text()

        # click: the detail panel shows this filter's deconvolution for this image (28x28 at scale 6)
        page.mouse.click(*cell_centre(page, "conv2", filter))
        wait_until(
            page,
            "expected => { const d = document.getElementById('deconv');"
            " return d.dataset.filter === expected && d.complete && d.naturalWidth > 0 }",
            arg=f"conv2/{filter}",
        )
        assert page.locator("#deconv").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [168, 168]
        assert page.locator("#detail-map").is_visible()
        assert f"filter {filter}" in page.locator("#detail-title").inner_text()
        # where the service has the dataset statistics: the filter's top-9 images and the plots open
        page.wait_for_load_state("networkidle")
        if page.locator("#top-images-figure").is_visible():
            assert page.locator("#top-images").evaluate("img => img.complete && img.naturalWidth > 0")
        if page.locator("#stats").is_visible():
            page.click("#stats-links a >> nth=2")
            wait_until(
                page,
                "() => { const img = document.getElementById('plot'); return img.complete && img.naturalWidth > 0 }",
            )
            page.keyboard.press("Escape")
        page.mouse.move(5, 5)
        page.evaluate("document.activeElement?.blur()")
        wait_until(page, "() => document.getElementById('explain').dataset.state === 'ready'")
        assert page.locator("#explain-map").evaluate("img => img.complete && img.naturalWidth > 0")
        page.wait_for_load_state("networkidle")
        save_screenshot(page, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000


@contextmanager
def static_host(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on another loopback port: the page on an origin other than the API's."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def test_the_page_hosted_on_another_origin_works_with_api_keys_and_uploads(page):
    with running_service(CONVLENS_API_KEYS="e2e-key") as (base, _), static_host(STATIC) as origin:
        page.goto(f"{origin}/index.html?api={base}")
        assert base.removeprefix("http://") in page.locator("#api-base").inner_text()
        page.click("#connect-button")  # another origin than the page's own: the page asks first

        before = int(page.locator("body").get_attribute("data-seq"))
        draw(page, LINE, "error")
        assert "API key" in page.locator("#status").inner_text()
        assert int(page.locator("body").get_attribute("data-shown")) <= before

        page.fill("#api-key", "e2e-key")
        page.press("#api-key", "Enter")
        wait_until(page, "document.body.dataset.state === 'ready'")
        assert predicted(page) == "1"
        assert page.evaluate(f"localStorage.getItem('convlens.apiKey:{base}')") == "e2e-key"

        # a file chosen with the upload button goes to the service as it is (here a JPEG "photo")
        shown = int(page.locator("body").get_attribute("data-shown"))
        page.set_input_files("#file", str(ROOT / "examples" / "photo-3.jpg"))
        wait_until(page, "n => Number(document.body.dataset.shown) > n", arg=shown)
        assert predicted(page) == "3"


@contextmanager
def offline(page, origin: str) -> Iterator[list[str]]:
    """Let the page reach ``origin`` only, as on a machine without internet; yields the URLs it tried elsewhere."""
    elsewhere: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url == origin or url.startswith(f"{origin}/") or url.startswith("data:"):
            request_route.continue_()
        else:
            elsewhere.append(url)
            request_route.abort()

    page.route("**/*", route)
    yield elsewhere


def test_swagger_ui_at_docs_renders_every_operation_without_internet(page):
    with running_service() as (base, _), offline(page, base) as elsewhere:
        page.goto(f"{base}/docs")
        operation = page.locator(".opblock-summary-path[data-path='/v1/classify']")
        operation.first.wait_for()
        assert page.locator(".opblock").count() >= 20
        operation.first.click()
        page.locator(".opblock.is-open .parameters-container, .opblock.is-open .opblock-section").first.wait_for()
        assert elsewhere == []


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Another service's stand-in: records every request (method, path, headers) and answers 404 to all, with CORS
    headers so that the browser delivers the answers to the page."""

    requests: list[tuple[str, str, dict[str, str]]]

    def _answer(self) -> None:
        self.requests.append((self.command, self.path, {name.lower(): value for name, value in self.headers.items()}))
        self.send_response(204 if self.command == "OPTIONS" else 404)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command != "OPTIONS":
            self.wfile.write(b'{"status": 404, "error": "not here"}')

    do_GET = do_POST = do_OPTIONS = _answer

    def log_message(self, format, *args):
        pass


@contextmanager
def recording_host() -> Iterator[tuple[str, list]]:
    """A second local listener on another port; yields its origin and the list of requests it received."""
    requests: list = []
    handler = type("Recorder", (RecordingHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_pointed_at_another_origin_sends_nothing_there_until_the_user_connects(page):
    with running_service(CONVLENS_API_KEYS="e2e-key") as (base, _), recording_host() as (other, requests):
        page.goto(f"{base}/")
        page.fill("#api-key", "e2e-key")
        page.press("#api-key", "Enter")
        assert page.evaluate(f"localStorage.getItem('convlens.apiKey:{base}')") == "e2e-key"

        page.goto(f"{base}/?api={other}")
        page.wait_for_load_state("networkidle")
        assert page.locator("#connect").is_visible() and other in page.locator("#connect-origin").inner_text()
        draw(page, LINE, "error")
        assert "until you connect" in page.locator("#status").inner_text()
        assert requests == []
        assert page.locator("#api-key").input_value() == ""

        asked = int(page.locator("body").get_attribute("data-seq"))
        page.click("#connect-button")  # now the stroke goes there, with no key: none was entered for that origin
        wait_until(
            page, "n => Number(document.body.dataset.seq) > n && document.body.dataset.state === 'error'", arg=asked
        )
        assert not page.locator("#connect").is_visible()
        page.wait_for_load_state("networkidle")
        assert {path.split("?")[0] for _, path, _ in requests} >= {"/v1/inspect", "/v1/statistics"}
        assert all("x-api-key" not in headers and "authorization" not in headers for _, _, headers in requests)


# Four strokes of a "#": the digit judge flags it (as it flags letters and noise), though the network names a digit.
HASH = [[(40, 90), (240, 90)], [(40, 190), (240, 190)], [(100, 30), (100, 250)], [(180, 30), (180, 250)]]


def shown(page) -> int:
    return int(page.locator("body").get_attribute("data-shown"))


def test_the_studies_move_the_digit_show_what_a_filter_wants_and_say_when_it_is_no_digit(page):
    """Invariance sliders (the prediction and grids follow the moved input), a filter's optimized input and evolution
    strip (its epoch labels legible at the page's size), and the plain sentence when the digit judge says the drawing
    is no digit."""
    with running_service() as (base, _):
        page.goto(f"{base}/")
        assert draw(page, SEVEN) == "7"
        page.wait_for_selector('#invariance[data-curves="rotate"]')  # the curves of this drawing, from /v1/invariance
        assert page.evaluate("document.body.dataset.digitLike") == "true"
        assert not page.locator("#not-digit").is_visible()
        assert "rotate 0.0°: predicted 7" in page.locator("#invariance-step").inner_text()

        # a slider moves the network's input; the prediction and every grid follow it, debounced into one request
        before = {
            "input": page.locator("#input").get_attribute("src"),
            "conv1": page.locator('.layer[data-layer="conv1"] img.grid').get_attribute("src"),
        }
        count = shown(page)
        shift = page.locator('#invariance-sliders input[data-transform="shift-x"]')
        shift.focus()
        for _ in range(8):  # eight presses in a row (debounced: the page asks for the moves it has time to show)
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "n => Number(document.body.dataset.shown) > n && document.body.dataset.state === 'ready'", arg=count
        )
        page.wait_for_selector('#invariance[data-moved="shift-x:16"][data-curves="shift-x"]')
        page.wait_for_load_state("networkidle")
        assert page.locator('.slider[data-transform="shift-x"] .amount').inner_text() == "+8 px"
        assert page.locator("#input").get_attribute("src") != before["input"]
        assert page.locator('.layer[data-layer="conv1"] img.grid').get_attribute("src") != before["conv1"]
        step = page.locator("#invariance-step").inner_text()
        assert step.startswith("shift-x +8 px: predicted ")
        assert predicted(page) == step.split("predicted ")[1].split(",")[0]  # the moved input as the curves saw it
        # the input shown is the drawing moved 8 px right: its ink's centre of mass moved by about 8 px
        centre = page.evaluate(
            """async (before) => {
                const centre = async (src) => {
                    const img = new Image(); img.src = src; await img.decode();
                    const c = document.createElement('canvas'); c.width = c.height = 28;
                    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                    const d = g.getImageData(0, 0, 28, 28).data; let m = 0, x = 0;
                    for (let i = 0; i < 784; i++) { m += d[4 * i]; x += d[4 * i] * (i % 28); }
                    return x / m;
                };
                return [await centre(before), await centre(document.getElementById('input').src)];
            }""",
            before["input"],
        )
        assert 6 <= centre[1] - centre[0] <= 9, centre

        moved = shown(page)
        page.click("#invariance-reset")  # back to the drawing itself
        page.wait_for_selector('#invariance[data-moved=""]')
        page.wait_for_function(
            "n => Number(document.body.dataset.seq) > n && document.body.dataset.shown === document.body.dataset.seq"
            " && document.body.dataset.state === 'ready'",
            arg=moved,
        )
        assert predicted(page) == "7"

        # a filter's optimized input beside its deconvolution, and its evolution during training
        active = [int(k) for k in page.locator('.layer[data-layer="conv2"]').get_attribute("data-active").split(",")]
        page.mouse.click(*cell_centre(page, "conv2", active[0]))
        page.wait_for_function(
            "expected => ['optimized', 'evolution'].every(id => { const img = document.getElementById(id);"
            " return img.dataset.filter === expected && img.complete && img.naturalWidth > 0 })",
            arg=f"conv2/{active[0]}",
        )
        assert page.locator("#optimized").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [168, 168]
        assert page.locator("#optimized-figure").is_visible() and page.locator("#evolution-figure").is_visible()
        assert page.locator("#evolution").evaluate("img => img.naturalWidth > img.naturalHeight")
        # the strip's epoch labels are drawn at ROW_LABEL_SIZE px: shown at its own size, they stay legible
        rendered = page.locator("#evolution").evaluate("img => img.getBoundingClientRect().width / img.naturalWidth")
        assert ROW_LABEL_SIZE * rendered >= 9.5, f"the epoch labels render at {ROW_LABEL_SIZE * rendered:.1f} px"

        # not a digit: the page says so plainly, and takes it back for a digit
        page.click("#clear")
        draw(page, HASH)
        page.wait_for_function("() => document.body.dataset.digitLike === 'false'")
        note = page.locator("#not-digit")
        assert note.is_visible() and "does not look like a digit" in note.inner_text()
        page.click("#clear")
        assert not note.is_visible()
        draw(page, SEVEN)
        page.wait_for_function("() => document.body.dataset.digitLike === 'true'")
        assert not note.is_visible()


def test_the_explain_panel_shows_the_predicted_class_then_a_clicked_bars_class(page):
    with running_service() as (base, _):
        page.goto(f"{base}/")
        assert draw(page, SEVEN) == "7"
        # the strokes' earlier results may have been explained first: wait for the map of the final prediction
        page.wait_for_function(
            "() => document.getElementById('explain').dataset.state === 'ready' "
            "&& document.getElementById('explain').dataset.target === '7'"
        )
        assert page.locator("#explain-map").evaluate("img => img.complete && img.naturalWidth") == 28 * 6
        page.locator("#bars li").nth(1).click()
        page.wait_for_function("() => document.getElementById('explain').dataset.target === '1'")
        page.wait_for_function("() => document.getElementById('explain').dataset.state === 'ready'")
        menu = page.locator("#explain-method option").evaluate_all("options => options.map(o => o.value)")
        assert menu == list(METHODS)  # read from the service's registry
        assert page.locator("#explain-method").input_value() == "integrated-gradients"
        for method in ("grad-cam", "occlusion"):
            page.select_option("#explain-method", method)
            page.wait_for_function(
                "m => document.getElementById('explain').dataset.method === m "
                "&& document.getElementById('explain').dataset.state === 'ready'",
                arg=method,
            )
            assert page.locator("#explain-map").evaluate("img => img.naturalWidth") == 28 * 6  # at input size
        assert "diverging" in page.locator("#explain-legend").inner_text()


def test_the_explain_panel_shows_the_maps_quality_metrics_and_its_sanity_verdict(page):
    with running_service() as (base, _):
        page.goto(f"{base}/")
        assert draw(page, SEVEN) == "7"
        page.wait_for_function("() => document.getElementById('explain-quality').dataset.state === 'ready'")
        box = page.locator("#explain-quality")
        text = box.inner_text()
        for label in (
            "Deletion area",
            "Insertion area",
            "ROAD, most relevant first",
            "Faithfulness correlation",
            "Max-sensitivity",
            "Sparseness (Gini)",
            "Completeness gap",
        ):  # integrated gradients, the default
            assert label in text
        verdict = box.get_attribute("data-sanity")
        assert verdict in ("pass", "fail")
        assert f"{'passes' if verdict == 'pass' else 'fails'} the sanity checks" in text
        page.select_option("#explain-method", "saliency")
        page.wait_for_function(
            "() => document.getElementById('explain').dataset.method === 'saliency' "
            "&& document.getElementById('explain-quality').dataset.state === 'ready'"
        )
        assert "Completeness gap" not in box.inner_text()  # defined for integrated gradients only


@pytest.fixture(scope="module")
def imported_example(tmp_path_factory) -> Iterator[str]:
    """A service with the example network imported beside the shipped models, with its dataset analysis, as
    ``make import-example`` installs it, and a tiny network with an op that has no backward rule (Erf); yields its
    base URL."""
    models = link_shipped_models(tmp_path_factory.mktemp("imported") / "models")
    example = ROOT / "examples" / "models"
    arguments = [str(example / "mnist-cnn.onnx"), "--name", "mnist-cnn", "--preprocess", "mnist"]
    analysis = str(example / "mnist-cnn-analysis")
    assert import_model([*arguments, "--models-dir", str(models), "--analysis", analysis]) == 0
    erf = save(with_erf(), models.parent / "erf.onnx")
    assert import_model([str(erf), "--name", "erf", "--resize", "16", "--models-dir", str(models)]) == 0
    with running_service(CONVLENS_MODEL_DIR=str(models)) as (base, _):
        yield base


def draw_on_the_imported_example(page, base: str) -> list[str]:
    """Open the page, pick the imported example, draw a 7; returns the URLs the page asks from then on."""
    page.goto(f"{base}/")
    wait_until(page, "() => Number(document.body.dataset.models) > 0")
    page.select_option("#model", "mnist-cnn")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    assert draw(page, SEVEN) == "7"
    return sent


def attribution_queries(sent: list[str], method: str) -> list[dict[str, str]]:
    """The query parameters of each request the page sent to ``method``'s attribution route."""
    return [
        dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        for url in sent
        if urllib.parse.urlsplit(url).path == f"/v1/attribution/{method}"
    ]


def test_the_imported_example_picked_in_the_selector_classifies_a_drawn_digit(page, imported_example):
    page.goto(f"{imported_example}/")
    wait_until(page, "() => Number(document.body.dataset.models) > 0")
    assert page.locator("#model option").all_inner_texts() == ["classifier", "erf (imported)", "mnist-cnn (imported)"]
    page.select_option("#model", "mnist-cnn")
    assert draw(page, SEVEN) == "7"
    assert page.locator("#bars li").first.locator(".label").inner_text() == "7"
    layers = page.locator(".layer").evaluate_all("cards => cards.map((card) => card.dataset.layer)")
    assert (layers[0], layers[-1], len(layers)) == ("features.0.Conv", "pool.GlobalAveragePool", 12)
    assert page.locator("#input-caption").inner_text() == (
        "what the network sees (28×28, through the model's own preprocessing)"
    )


def test_the_imported_examples_explain_panel_maps_and_measures_the_predicted_then_a_clicked_bars_class(
    page, imported_example
):
    sent = draw_on_the_imported_example(page, imported_example)
    wait_until(page, "() => document.getElementById('explain-quality').dataset.state === 'ready'")
    menu = page.locator("#explain-method option:not([disabled])")
    offered = menu.evaluate_all("options => options.map(o => o.value)")
    served = httpx.get(f"{imported_example}/v1/models/mnist-cnn").json()["capabilities"]["attribution_methods"]
    assert offered == served
    assert page.locator("#explain").get_attribute("data-target") == "7"
    assert page.locator("#explain-map").evaluate("img => img.complete && img.naturalWidth") == 28 * 6
    first = attribution_queries(sent, "integrated-gradients")[0]
    assert (first["target"], first["model"]) == ("7", "mnist-cnn")
    box = page.locator("#explain-quality")
    assert "Deletion area" in box.inner_text() and "Completeness gap" in box.inner_text()
    assert box.get_attribute("data-sanity") in ("pass", "fail")

    # the third bar is the third most probable class: its class index, not its position, is the target sent
    bar = page.locator("#bars li").nth(2)
    index = bar.get_attribute("data-index")
    assert index != "2" and bar.locator(".label").inner_text() == index  # the example's labels are its digits
    sent.clear()
    bar.click()
    wait_until(page, "i => document.getElementById('explain').dataset.target === i", arg=index)
    wait_until(page, "() => document.getElementById('explain-quality').dataset.state === 'ready'")
    queries = attribution_queries(sent, "integrated-gradients")
    assert [(q["target"], q["model"], q.get("metrics")) for q in queries] == [
        (index, "mnist-cnn", None),
        (index, "mnist-cnn", "all"),
    ]
    assert f"class {index}:" in page.locator("#explain-legend").inner_text()
    assert "Deletion area" in box.inner_text()


def test_the_explain_menu_of_a_model_without_gradients_offers_its_methods_and_says_why_not_the_others(
    page, imported_example
):
    page.goto(f"{imported_example}/")
    wait_until(page, "() => Number(document.body.dataset.models) > 0")
    page.select_option("#model", "erf")
    draw(page, SEVEN)
    wait_until(page, "() => document.getElementById('explain').dataset.state === 'ready'")  # an offered method's map
    capabilities = httpx.get(f"{imported_example}/v1/models/erf").json()["capabilities"]
    options = page.locator("#explain-method option").evaluate_all(
        "options => options.map(o => ({name: o.value, disabled: o.disabled, title: o.title}))"
    )
    assert [o["name"] for o in options if o["disabled"]] == capabilities["attribution_needs_gradients"]
    assert [o["name"] for o in options if not o["disabled"]] == capabilities["attribution_methods"]
    assert all(capabilities["no_gradients"] in o["title"] for o in options if o["disabled"])
    assert "Erf" in capabilities["no_gradients"]
    assert page.locator("#explain").get_attribute("data-method") in capabilities["attribution_methods"]


def test_a_cut_head_cam_of_the_imported_example_shows_its_metrics_and_says_why_it_has_no_sanity_checks(
    page, imported_example
):
    draw_on_the_imported_example(page, imported_example)
    wait_until(page, "() => document.getElementById('explain-quality').dataset.state === 'ready'")
    page.select_option("#explain-method", "eigen-cam")
    wait_until(
        page,
        "() => document.getElementById('explain').dataset.method === 'eigen-cam' "
        "&& document.getElementById('explain-quality').dataset.state === 'ready'",
    )
    box = page.locator("#explain-quality")
    assert box.get_attribute("data-sanity") == "none"
    text = box.inner_text()
    assert "Deletion area" in text and "Sparseness (Gini)" in text
    assert "No sanity checks: sanity is not measured for eigen-cam" in text and "its head is cut" in text


def test_the_imported_examples_clicked_filter_shows_its_deconvolution_top_images_and_optimized_input(
    page, imported_example
):
    draw_on_the_imported_example(page, imported_example)
    layer = "features.4.Conv"
    filter = int(page.locator(f'.layer[data-layer="{layer}"]').get_attribute("data-active").split(",")[0])
    page.mouse.click(*cell_centre(page, layer, filter))
    wait_until(
        page,
        "expected => ['deconv', 'optimized'].every(id => { const img = document.getElementById(id);"
        " return img.dataset.filter === expected && img.complete && img.naturalWidth > 0 })",
        arg=f"{layer}/{filter}",
    )
    assert page.locator("#deconv").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [168, 168]
    assert page.locator("#optimized").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [168, 168]
    wait_until(page, "() => { const img = document.getElementById('top-images'); return img.naturalWidth > 0 }")
    assert page.locator("#top-images-figure").is_visible()
    # the training evolution is the shipped classifiers': the page says so in the service's words
    absent = page.locator('#detail-absent li[data-part="evolution during training"]')
    absent.wait_for()
    assert "is an imported model: conv1's kernels and the training evolution" in absent.inner_text()
    assert not page.locator("#evolution-figure").is_visible()


def test_the_imported_examples_invariance_panel_draws_its_curves(page, imported_example):
    sent = draw_on_the_imported_example(page, imported_example)
    page.wait_for_selector('#invariance[data-curves="rotate"]')
    assert page.locator("#invariance").is_visible()
    assert page.locator("#invariance-step").inner_text().startswith("rotate 0.0°: predicted 7, p(7) = ")
    asked = [urllib.parse.urlsplit(url) for url in sent if urllib.parse.urlsplit(url).path == "/v1/invariance"]
    assert asked and all("model=mnist-cnn" in url.query for url in asked)
    drawn = page.locator("#invariance-curves").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n }"
    )
    assert drawn > 1000
