"""The app in a real (headless) browser: Debian's chromium driven by Playwright's Python package.

Uploads an image, searches, and checks the result gallery; then picks a random gallery image and checks it is
left out of its own results (the gr.State path), and that a new upload forgets it. Last, the app as a user starts
it (`python app.py`: the real-photo demo, real Lite2 weights): a CC0 photo of shoes that is not in the demo
returns shoes first, and a gallery without colour labels shows no colour-match column.
"""

from __future__ import annotations

import json
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

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

import app  # noqa: E402


@pytest.fixture(scope="module")
def app_url(gallery_dir, classifier_dir):
    args = app.parse_args(["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"])
    demo = app.create_app(app.build_engine(args))
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1100})
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(app_url, wait_until="domcontentloaded")
            pg.get_by_role("heading", name="Apparel image search").wait_for()
            yield pg
        finally:
            browser.close()


def _set_k(page, k: int) -> None:
    box = page.get_by_label("Number of results (k)").and_(page.locator("input[type=number]"))
    box.fill(str(k))
    box.press("Enter")


_LOADED_JS = """img => (img.complete && img.naturalWidth > 0) || new Promise(resolve => {
    img.addEventListener("load", () => resolve(img.naturalWidth > 0), {once: true});
    img.addEventListener("error", () => resolve(false), {once: true});
})"""


def _search_and_wait(page, k: int):
    page.get_by_role("button", name="Search", exact=True).click()
    thumbs = page.locator("#results-gallery img")
    sync_api.expect(thumbs).to_have_count(k, timeout=TIMEOUT_MS)
    return thumbs


def test_upload_search_shows_result_gallery(page, gallery, tmp_path):
    query = tmp_path / "query.png"
    gallery.image(7).save(query)
    sync_api.expect(page.locator("#weights-banner")).to_contain_text("randomly initialised", ignore_case=True)
    sync_api.expect(page.locator("#weights-banner")).to_contain_text("--random-weights")

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


@pytest.fixture(scope="module")
def demo_page():
    """The app with no options (the embedded real-photo demo) in its own browser page."""
    demo = app.create_app(app.build_engine(app.parse_args(["--device", "cpu"])))
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                pg = browser.new_page(viewport={"width": 1400, "height": 1100})
                pg.set_default_timeout(TIMEOUT_MS)
                pg.goto(demo.local_url, wait_until="domcontentloaded")
                pg.get_by_role("heading", name="Apparel image search").wait_for()
                yield pg
            finally:
                browser.close()
    finally:
        demo.close()


def _shown_json(page) -> dict:
    text = page.locator("#results-json").inner_text()
    return json.loads(text[text.index("{") :])


def test_demo_finds_shoes_for_a_cc0_shoe_photo_not_in_the_demo(demo_page):
    page = demo_page
    assert page.locator("#weights-banner").count() == 0  # real weights: no random-weights banner
    shoes = ROOT / "tests" / "data" / "cc0" / "shoes.jpg"  # held out of demo/ (demo/holdout.json)
    _set_k(page, 5)
    page.locator("#query-image input[type=file]").set_input_files(str(shoes))
    page.locator("#query-image img").first.wait_for()
    _search_and_wait(page, 5)
    sync_api.expect(page.locator("#results-json")).to_contain_text('"rank": 1')
    shown = _shown_json(page)
    assert shown["results"][0]["label"] == "shoes", shown["results"]
    assert shown["results"][0]["colour"] is None  # the CC0 demo has types, no colours


def test_demo_without_colour_labels_has_no_colour_match_column(demo_page):
    page = demo_page
    page.get_by_role("button", name="Random gallery image").click()
    sync_api.expect(page.locator("#query-info")).to_contain_text("Gallery image #")
    page.get_by_role("button", name="Search", exact=True).click()
    table = page.locator("#results-table")
    sync_api.expect(table).to_contain_text("type match", timeout=TIMEOUT_MS)
    assert "colour match" not in table.inner_text()
