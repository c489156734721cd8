"""The app in a real (headless) browser: Debian's chromium driven by Playwright's Python package.

Uploads an image, searches, and checks the result gallery; then picks a random gallery image and checks it is
left out of its own results (the gr.State path), and that a new upload forgets it. Then what a new user tries:
a search with no image, a truncated upload, filters, selecting a result (heat-maps), feedback, a crop box, the
plots. Last, the app as a user starts it (`python app.py`: the real-photo demo, real Lite2 weights): a CC0 photo
of shoes that is not in the demo returns shoes first, and a gallery without colour labels shows no colour-match
column. With CBIR_SCREENSHOT_DIR set, screenshots of each are saved there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
K = 6
K_SLIDER = "#k input[type=range]"  # the k slider's range input: what the slider holds

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

import app  # noqa: E402
from cbir.search.words import display  # noqa: E402
from serving import served  # noqa: E402


@pytest.fixture(scope="module")
def app_url(gallery_dir, classifier_dir):
    with served(["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str):
    pg = browser.new_page(viewport={"width": 1400, "height": 1100})
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_role("heading", name="Apparel image search").wait_for()
    _open_details(pg)
    return pg


def _open_details(page) -> None:
    """Open the collapsed Details section (ranking table, plots, JSON): Gradio renders its content only when open."""
    page.locator("#details button.label-wrap").first.click()
    page.locator("#results-json").wait_for(state="attached")


@pytest.fixture(scope="module")
def page(browser, app_url):
    return _open(browser, app_url)


def _open_settings(page) -> None:
    """Open the collapsed Search settings (method, task, k, duplicates) once: its content renders when open."""
    if page.get_by_label("Number of results (k)").count() == 0:
        page.locator("#search-settings button.label-wrap").first.click()


def _set_k(page, k: int) -> None:
    """Type k into the slider's number box until the slider itself shows it.

    A page that is still settling (its load event, the accordion mounting) can put the default back once, so the
    value is checked on the range input and typed again if it did not hold.
    """
    _open_settings(page)
    box = page.get_by_label("Number of results (k)").and_(page.locator("input[type=number]"))
    slider = page.locator(K_SLIDER)
    for _ in range(5):
        box.fill(str(k))
        box.press("Enter")
        box.blur()
        page.wait_for_timeout(200)
        if slider.input_value() == str(k) and box.input_value() == str(k):
            return
    sync_api.expect(slider).to_have_value(str(k))


_LOADED_JS = """img => (img.complete && img.naturalWidth > 0) || new Promise(resolve => {
    img.addEventListener("load", () => resolve(img.naturalWidth > 0), {once: true});
    img.addEventListener("error", () => resolve(false), {once: true});
})"""


def _search_and_wait(page, k: int):
    slider = page.locator(K_SLIDER)
    if slider.count() and slider.input_value() != str(k):
        _set_k(page, k)  # the slider lost the value typed before (see _set_k): type it again before searching
    page.get_by_role("button", name="Search", exact=True).click()
    thumbs = page.locator("#results-gallery img")
    sync_api.expect(thumbs).to_have_count(k, timeout=TIMEOUT_MS)
    return thumbs


def test_upload_search_shows_result_gallery(page, gallery, tmp_path):
    query = tmp_path / "query.png"
    gallery.image(7).save(query)
    sync_api.expect(page.locator("#weights-banner")).to_contain_text("randomly initialised", ignore_case=True)

    _set_k(page, K)
    page.locator("#query-image input[type=file]").set_input_files(str(query))
    page.locator("#query-image img").first.wait_for()
    thumbs = _search_and_wait(page, K)
    for i in range(K):  # each thumbnail really loads (waits for its load event if still in flight)
        assert thumbs.nth(i).evaluate(_LOADED_JS)
    captions = page.locator("#results-gallery").inner_text()
    assert captions.count(" · ") >= K  # "label · score"
    table = page.locator("#results-table")
    sync_api.expect(table).to_contain_text("rank")
    assert "type match" not in table.inner_text()  # an uploaded query is not a gallery image

    shot = tmp_path / "search.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("CBIR_SCREENSHOT"):
        Path(os.environ["CBIR_SCREENSHOT"]).write_bytes(shot.read_bytes())


def test_random_gallery_image_is_left_out_of_its_own_results(page, gallery, tmp_path):
    page.get_by_role("button", name="Random gallery image").click()
    info = page.locator("#query-info")
    sync_api.expect(info).to_contain_text("Gallery image #")
    index = int(info.inner_text().split("#", 1)[1].split(":", 1)[0])
    # It searches at once: the previous query's results are replaced by the picked image's own.
    sync_api.expect(page.locator("#results-table")).to_contain_text("type match", timeout=TIMEOUT_MS)
    sync_api.expect(page.locator("#results-json")).to_contain_text(
        re.compile(rf'"excluded_index"\s*:\s*{index}\b'), timeout=TIMEOUT_MS
    )
    _search_and_wait(page, K)
    sync_api.expect(page.locator("#results-table")).to_contain_text("type match")
    box = page.locator("#results-json")
    sync_api.expect(box).to_contain_text(re.compile(rf'"excluded_index"\s*:\s*{index}\b'))
    text = box.inner_text()
    shown = json.loads(text[text.index("{") :])
    assert shown["excluded_index"] == index and shown["query"]["index"] == index
    assert index not in [r["index"] for r in shown["results"]]

    # A new upload replaces the picked image: the state is cleared and the label goes away.
    other = tmp_path / "other.png"
    gallery.image((index + 1) % len(gallery)).save(other)
    page.locator("#query-image input[type=file]").set_input_files(str(other))
    sync_api.expect(info).not_to_contain_text("Gallery image #")
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.locator("#results-table")).not_to_contain_text("type match", timeout=TIMEOUT_MS)


def test_describe_box_takes_type_and_colour_words_on_a_timm_gallery_with_attribute_models(page):
    box = page.get_by_label("Describe the garment")
    sync_api.expect(box).to_be_visible()
    sync_api.expect(box).to_have_attribute("placeholder", "black sneakers")


@pytest.fixture(scope="module")
def clip_page(browser, clip_gallery_dir):
    """The app on a CLIP gallery (tiny random-weight transformers model): the words box is there."""
    with served(["--gallery", str(clip_gallery_dir), "--device", "cpu"]) as url:
        yield _open(browser, url)


def test_words_alone_search_a_clip_gallery(clip_page):
    box = clip_page.get_by_label("Describe the garment")
    sync_api.expect(box).to_be_visible()
    box.fill("red summer dress")
    _set_k(clip_page, K)
    clip_page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(clip_page.locator("#results-json")).to_contain_text('"text": "red summer dress"')
    # the tiny random CLIP embeds the generated images nearly alike, so dedup (on by default) may merge some
    assert clip_page.locator("#results-gallery img").count() >= 1

# --- what a new user tries -------------------------------------------------------------------------------------


def _shot(page, name: str) -> None:
    folder = os.environ.get("CBIR_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _fresh(page):
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("heading", name="Apparel image search").wait_for()
    _open_details(page)


def _no_error_badges(page):
    for panel in ("#results-gallery", "#results-json", "#score-histogram", "#gallery-map"):
        assert page.locator(panel).get_by_text("Error", exact=True).count() == 0, panel


def _json(page) -> dict:
    text = page.locator("#results-json").inner_text()
    return json.loads(text[text.index("{") :])


def test_search_without_image_is_a_toast_only_and_the_table_waits_for_results(page):
    _fresh(page)
    assert not page.locator("#results-table").is_visible()  # no empty table with "1 2 3" headers
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.get_by_text("No image: upload an image").first).to_be_visible()
    _no_error_badges(page)
    _shot(page, "01-no-image-toast")


def test_truncated_upload_says_why_and_is_cleared(page, gallery, tmp_path):
    _fresh(page)
    good = tmp_path / "good.png"
    gallery.image(3).save(good)
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    page.locator("#query-image input[type=file]").set_input_files(str(bad))
    sync_api.expect(page.get_by_text("Corrupt or truncated image").first).to_be_visible(timeout=TIMEOUT_MS)
    _shot(page, "02-truncated-upload-toast")
    sync_api.expect(page.locator("#query-image img")).to_have_count(0)  # no broken thumbnail left behind
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.get_by_text("No image: upload an image").first).to_be_visible()
    _no_error_badges(page)


def test_bad_input_answers_without_500s_or_tracebacks(page, gallery, tmp_path, capfd, caplog):
    """A truncated upload, a text file named .png and a reversed crop box: each a toast with the message as
    written (no HTML escapes), no HTTP 5xx for any request, and no traceback in the server's output."""
    caplog.set_level(logging.INFO, logger="cbir.app")
    statuses: list[tuple[int, str]] = []

    def record(response) -> None:
        statuses.append((response.status, response.url))

    page.on("response", record)
    try:
        _fresh(page)
        good = tmp_path / "good.png"
        gallery.image(3).save(good)
        bad = tmp_path / "truncated.png"
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        text = tmp_path / "notes.png"
        text.write_text("this is not an image\n")
        for path, message in ((bad, "Corrupt or truncated image"), (text, "Not an image file")):
            page.locator("#query-image input[type=file]").set_input_files(str(path))
            sync_api.expect(page.get_by_text(message).first).to_be_visible(timeout=TIMEOUT_MS)
        page.locator("#query-image input[type=file]").set_input_files(str(good))
        page.locator("#query-image img").first.wait_for()
        page.locator("#crop-panel").get_by_text("Crop the query").click()
        page.locator("#crop-box textarea, #crop-box input").first.fill("40, 40, 10, 10")
        page.get_by_role("button", name="Search", exact=True).click()
        sync_api.expect(page.get_by_text("box must have x0 < x1 and y0 < y1").first).to_be_visible(timeout=TIMEOUT_MS)
        assert page.get_by_text("&lt;").count() == 0
        page.wait_for_timeout(500)  # the last responses
    finally:
        page.remove_listener("response", record)
    failed = [(code, url) for code, url in statuses if code >= 500]
    assert statuses and not failed, failed
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, (out + err)[-3000:]
    refused = [r for r in caplog.records if "box must have x0 < x1" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in refused] == [("INFO", None)]  # one line, no traceback


def test_an_upload_over_the_size_limit_names_the_limit_in_mb(page, gallery, tmp_path):
    """A 27 MB photo is refused by the page before it is sent, with the limit in MB and the file's name."""
    _fresh(page)
    big = tmp_path / "huge.jpg"
    good = tmp_path / "good.png"
    gallery.image(3).save(good)
    big.write_bytes(good.read_bytes() + bytes(27 * 1024 * 1024))
    page.locator("#query-image input[type=file]").set_input_files(str(big))
    toast = page.get_by_text(re.compile(r"maximum allowed size of 25\.0 MB", re.IGNORECASE)).first  # Gradio: "Mb"
    sync_api.expect(toast).to_be_visible(timeout=TIMEOUT_MS)
    assert "huge.jpg" in toast.inner_text() and "bytes" not in toast.inner_text()
    _shot(page, "02b-too-large-toast")
    _no_error_badges(page)


@contextlib.contextmanager
def _window(browser, url: str, width: int, height: int):
    """A fresh page of the app in a window of this size, closed afterwards."""
    pg = browser.new_page(viewport={"width": width, "height": height})
    try:
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(url, wait_until="domcontentloaded")
        yield pg
    finally:
        pg.close()


def _upload(page, gallery, index: int, tmp_path) -> None:
    path = tmp_path / f"upload-{index}.png"
    gallery.image(index).save(path)
    page.locator("#query-image input[type=file]").set_input_files(str(path))


def test_on_a_phone_the_results_come_before_the_options_two_a_row(browser, app_url, gallery, tmp_path):
    """At 390 px the columns stack as a shopper needs them: photo, Search, results, then method and filters."""
    with _window(browser, app_url, 390, 844) as pg:
        _upload(pg, gallery, 5, tmp_path)
        pg.locator("#query-image img").first.wait_for()
        thumbs = _search_and_wait(pg, 10)
        top = {name: pg.locator(sel).first.bounding_box()["y"] for name, sel in
               (("search", "#search-btn"), ("results", "#results-gallery"), ("filters", "#filter-types"))}
        assert top["search"] < top["results"] < top["filters"], top
        boxes = [thumbs.nth(i).locator("xpath=ancestor::button[1]").bounding_box() for i in range(3)]
        assert boxes[0]["y"] == boxes[1]["y"] < boxes[2]["y"]  # two a row
        assert boxes[0]["width"] > 120
        _shot(pg, "14-phone")


def test_filters_select_explain_feedback_and_plots(page, gallery, tmp_path):
    _fresh(page)
    _set_k(page, K)
    query = tmp_path / "query.png"
    gallery.image(20).save(query)
    page.locator("#query-image input[type=file]").set_input_files(str(query))
    page.locator("#query-image img").first.wait_for()
    page.locator("#filter-types").get_by_label("shoes").check()
    _search_and_wait(page, K)
    sync_api.expect(page.locator("#results-json")).to_contain_text('"filters"')
    shown = _json(page)
    assert shown["filters"] == {"type": ["shoes"]} and all(r["type"] == "shoes" for r in shown["results"])
    for plot in ("#score-histogram", "#gallery-map"):
        sync_api.expect(page.locator(plot).locator("canvas, svg").first).to_be_visible(timeout=TIMEOUT_MS)
        legend = page.locator(plot).locator(".role-legend").first
        sync_api.expect(legend).to_be_visible(timeout=TIMEOUT_MS)
        page.wait_for_timeout(300)  # the last layout pass
        block, lg = page.locator(plot).bounding_box(), legend.bounding_box()
        assert lg["y"] + lg["height"] <= block["y"] + block["height"], plot  # the legend is inside, not clipped
        assert page.locator(plot).evaluate("e => e.scrollHeight <= e.clientHeight + 1"), plot
    _shot(page, "03-filter-shoes-plots")

    page.locator("#results-gallery img").nth(1).click()  # select the second result
    for side in ("#explain-query", "#explain-result"):
        img = page.locator(f"{side} img").first
        img.wait_for(timeout=TIMEOUT_MS)
        assert img.evaluate(_LOADED_JS)
    second = shown["results"][1]["index"]
    sync_api.expect(page.locator("#explain-info")).to_contain_text(f"Why #{second}")
    _shot(page, "04-why-heatmaps")

    page.locator("#more-like").click()
    sync_api.expect(page.locator("#feedback-marks")).to_contain_text(f"More like: #{second}")
    page.keyboard.press("Escape")  # leave the gallery's preview mode
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.locator("#results-json")).to_contain_text(
        re.compile(rf'"positives"\s*:\s*\[\s*{second}\s*\]'), timeout=TIMEOUT_MS
    )
    _no_error_badges(page)
    _shot(page, "05-feedback-search")


def test_crop_by_clicking_two_corners(page, gallery, tmp_path):
    _fresh(page)
    query = tmp_path / "outfit.png"
    gallery.image(5).resize((200, 200)).save(query)
    page.locator("#query-image input[type=file]").set_input_files(str(query))
    page.locator("#query-image img").first.wait_for()
    page.get_by_text("Crop the query (optional)").click()
    preview = page.locator("#crop-preview img").first
    preview.wait_for(timeout=TIMEOUT_MS)
    # Where the picture is drawn inside the <img> box (object-fit: scale-down letterboxes it, never enlarges it).
    left, top, width, height = preview.evaluate("""img => {
        const r = img.getBoundingClientRect(), s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
        const w = img.naturalWidth * s, h = img.naturalHeight * s;
        return [(r.width - w) / 2, (r.height - h) / 2, w, h];
    }""")
    preview.click(position={"x": left + width * 0.1, "y": top + height * 0.2})
    sync_api.expect(page.locator("#crop-box textarea, #crop-box input").first).to_have_value(re.compile(r"…$"))
    preview.click(position={"x": left + width * 0.7, "y": top + height * 0.9})
    box_input = page.locator("#crop-box textarea, #crop-box input").first
    sync_api.expect(box_input).to_have_value(re.compile(r"^\d+, \d+, \d+, \d+$"))
    x0, y0, x1, y1 = (int(v) for v in box_input.input_value().split(", "))
    assert (x0, y0, x1, y1) == pytest.approx((20, 40, 140, 180), abs=3), (x0, y0, x1, y1)
    page.get_by_role("button", name="Search", exact=True).click()
    sync_api.expect(page.locator("#results-json")).to_contain_text('"box": [', timeout=TIMEOUT_MS)
    assert _json(page)["box"] == [x0, y0, x1, y1]
    _shot(page, "06-crop-box")


def test_demo_example_photo_searches_on_click(demo_page):
    """The first screen: example photos (held out of the demo gallery) to click; one click shows results, each
    with its label and a readable similarity, and the technical detail stays collapsed."""
    demo_page.reload(wait_until="domcontentloaded")
    demo_page.get_by_role("heading", name="Apparel image search").wait_for()
    examples = demo_page.locator("#examples img")
    sync_api.expect(examples).to_have_count(3)
    examples.nth(1).click()  # shoes.jpg
    thumbs = demo_page.locator("#results-gallery img")
    sync_api.expect(thumbs.first).to_be_visible(timeout=TIMEOUT_MS)
    caption = demo_page.locator("#results-gallery").get_by_text(re.compile(r"^shoes · \d+(\.\d)?% similar")).first
    sync_api.expect(caption).to_be_visible()
    assert not demo_page.locator("#results-json").is_visible()  # in the collapsed Details
    _shot(demo_page, "09-example-clicked")
    _open_details(demo_page)  # as the next tests on this page expect it


def test_admin_tab_is_hidden_without_a_token(page):
    assert page.get_by_role("tab", name="Manage gallery").count() == 0


@pytest.fixture(scope="module")
def demo_page(browser):
    """The app with no options (the embedded real-photo demo) in its own browser page."""
    with served(["--device", "cpu"]) as url:
        yield _open(browser, url)


def test_demo_finds_shoes_for_a_cc0_shoe_photo_not_in_the_demo(demo_page):
    page = demo_page
    assert page.locator("#weights-banner").count() == 0  # real weights: no random-weights banner
    shoes = ROOT / "tests" / "data" / "cc0" / "shoes.jpg"  # held out of demo/ (demo/holdout.json)
    _set_k(page, 5)
    page.locator("#query-image input[type=file]").set_input_files(str(shoes))
    page.locator("#query-image img").first.wait_for()
    _search_and_wait(page, 5)
    sync_api.expect(page.locator("#results-json")).to_contain_text('"rank": 1')
    shown = _json(page)
    assert shown["results"][0]["label"] == "shoes", shown["results"]
    assert shown["results"][0]["colour"] is None  # the CC0 demo has types, no colours
    _shot(page, "10-demo-cc0-shoes")


def test_an_upload_alone_shows_results_in_view_at_1280_by_800(browser, app_url, gallery, tmp_path):
    """No Search click: the upload searches, and the photo and the first results are on screen without scrolling."""
    with _window(browser, app_url, 1280, 800) as pg:
        _upload(pg, gallery, 11, tmp_path)
        thumbs = pg.locator("#results-gallery img")
        sync_api.expect(thumbs).to_have_count(10, timeout=TIMEOUT_MS)  # the default k
        assert pg.evaluate("window.scrollY") == 0
        photo, first = pg.locator("#query-image img").first.bounding_box(), thumbs.first.bounding_box()
        for box in (photo, first):
            assert box["y"] >= 0 and box["y"] + box["height"] <= 800, (photo, first)
        _shot(pg, "15-upload-alone-1280x800")


def test_the_guess_and_a_runner_up_type_in_one_click(demo_page):
    """The demo's guess for an example photo is shown above the results; clicking a runner-up type filters to it."""
    page = demo_page
    page.reload(wait_until="domcontentloaded")
    page.get_by_role("heading", name="Apparel image search").wait_for()
    page.locator("#examples img").nth(0).click()  # dress.jpg
    sync_api.expect(page.locator("#guess")).to_contain_text(re.compile(r"Looks like \*?\*?.+\(\d+%\)"),
                                                             timeout=TIMEOUT_MS)
    alt = page.locator("#guess-alt-0")
    sync_api.expect(alt).to_be_visible()
    label = alt.inner_text().strip()
    alt.click()
    _open_details(page)
    sync_api.expect(page.locator("#results-json")).to_contain_text('"filters": {', timeout=TIMEOUT_MS)
    sync_api.expect(page.locator("#results-json")).to_contain_text('"type": [', timeout=TIMEOUT_MS)
    shown = _json(page)
    [wanted] = shown["filters"]["type"]
    assert display(wanted) == label and shown["results"]
    assert all(r["type"] == wanted for r in shown["results"])
    sync_api.expect(page.locator("#guess-all")).to_be_visible()  # and back to every type in one click
    _shot(page, "16-guess-alternative")


def test_words_without_clip_search_the_demo_by_type_and_colour(demo_page):
    page = demo_page
    box = page.get_by_label("Describe the garment")
    box.fill("black sneakers")
    box.press("Enter")
    _open_details(page) if page.locator("#results-json").count() == 0 else None
    sync_api.expect(page.locator("#results-json")).to_contain_text('"text": "black sneakers"', timeout=TIMEOUT_MS)
    shown = _json(page)
    assert shown["words"] == {"type": "shoes", "colour": "black"} and shown["results"][0]["type"] == "shoes"
    box.fill("tuxedo")
    box.press("Enter")
    sync_api.expect(page.get_by_text("does not know 'tuxedo'").first).to_be_visible(timeout=TIMEOUT_MS)


def test_demo_without_colour_labels_has_no_colour_match_column(demo_page):
    page = demo_page
    page.get_by_role("button", name="Random gallery image").click()
    sync_api.expect(page.locator("#query-info")).to_contain_text("Gallery image #")
    page.get_by_role("button", name="Search", exact=True).click()
    table = page.locator("#results-table")
    sync_api.expect(table).to_contain_text("type match", timeout=TIMEOUT_MS)
    assert "colour match" not in table.inner_text()


def test_admin_tab_adds_and_removes_with_the_token(browser, gallery_dir, gallery, tmp_path):
    import shutil

    folder = shutil.copytree(gallery_dir, tmp_path / "gallery")
    args = app.parse_args(["--gallery", str(folder), "--classifiers", "none", "--device", "cpu"])
    engine = app.build_engine(args)
    demo = app.create_app(engine, gallery_dir=folder, admin_token="tok")
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    n = len(engine.gallery)
    new = tmp_path / "new.png"
    gallery.image(0).save(new)
    try:
        pg = _open(browser, demo.local_url)
        pg.get_by_role("tab", name="Manage gallery").click()
        pg.locator("#admin-token input").fill("wrong")
        pg.locator("#add-files input[type=file]").set_input_files(str(new))
        pg.get_by_label("Label (colour_type or a type; optional)").fill("red_dress")
        pg.get_by_role("button", name="Add to gallery").click()
        sync_api.expect(pg.get_by_text("Wrong or missing admin token").first).to_be_visible()
        pg.locator("#admin-token input").fill("tok")
        pg.get_by_role("button", name="Add to gallery").click()
        status = pg.locator("#admin-status")
        sync_api.expect(status).to_contain_text(f"gallery indices {n}", timeout=TIMEOUT_MS)
        assert "Wrong or missing admin token" not in status.inner_text()  # the stale refusal is gone
        sync_api.expect(pg.locator("#add-files")).not_to_contain_text("new.png")  # the upload box is empty again
        sync_api.expect(pg.locator("#intro")).to_contain_text(f"{n + 1}-image gallery")  # the header follows
        _shot(pg, "07-admin-add")
        # the search captions show each result's id and row; removal takes the id
        pg.get_by_role("tab", name="Search").click()
        pg.locator("#query-image input[type=file]").set_input_files(str(new))
        sync_api.expect(pg.locator("#results-gallery")).to_contain_text(re.compile(r" · \S+ #\d+"), timeout=TIMEOUT_MS)
        pg.get_by_role("tab", name="Manage gallery").click()
        pg.locator("#remove-ids textarea, #remove-ids input").first.fill("new")
        pg.get_by_role("button", name="Remove from gallery").click()
        sync_api.expect(status).to_contain_text(f"now has {n}", timeout=TIMEOUT_MS)
        sync_api.expect(pg.locator("#intro")).to_contain_text(f"{n}-image gallery")
        pg.close()
    finally:
        demo.close()
    assert len(engine.gallery) == n
