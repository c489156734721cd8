#!/usr/bin/env python
"""Screenshots of the app as a shopper first uses it: the demo gallery, an example photo clicked, results shown.

`python scripts/screenshot.py OUT_DIR` writes desktop.png (1280 wide) and mobile.png (390 wide); the README's
docs/screenshot.png is the desktop one. Needs Debian's chromium and the playwright package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
WIDTHS = {"desktop": (1280, 900), "mobile": (390, 844)}


def shoot(url: str, out: Path, full_page: bool = True) -> list[Path]:
    """Open `url` at each width, click the first example, wait for the results, save one PNG per width."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        for name, (w, h) in WIDTHS.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#examples img, #examples button").first.click()
            expect(page.locator("#results-gallery img").first).to_be_visible(timeout=120_000)
            page.wait_for_timeout(1500)  # thumbnails finish loading
            paths.append(out / f"{name}.png")
            page.screenshot(path=str(paths[-1]), full_page=full_page)
            page.close()
        browser.close()
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for desktop.png and mobile.png")
    ap.add_argument("--url", help="a running app (default: start the demo app here)")
    args = ap.parse_args(argv)
    if args.url:
        shoot(args.url, args.out)
        return 0
    import app

    demo = app.create_app(app.build_engine(app.parse_args([])))
    demo.queue()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                max_file_size=app.MAX_FILE_SIZE)
    try:
        for p in shoot(demo.local_url, args.out):
            print(p)
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
