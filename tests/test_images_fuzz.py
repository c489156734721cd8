"""Fuzzing load_image: truncated and bit-flipped files in eleven formats end in RGB or an ImageError, fast.

The suite runs 11 x 200 seeded cases; a longer run: `CBIR_FUZZ_CASES=5000 pytest tests/test_images_fuzz.py`
(cases per format) and `CBIR_FUZZ_SEED` for other mutations.
"""

from __future__ import annotations

import collections
import faulthandler
import os
import signal
import time

import pytest
from PIL import Image

from cbir.images import MIN_SIDE, ImageError, load_image
from fuzzing import FORMATS, fuzz_cases, seed_files

PER_FORMAT = int(os.environ.get("CBIR_FUZZ_CASES", "200"))
SEED = int(os.environ.get("CBIR_FUZZ_SEED", "0"))
CASE_SECONDS = 10.0  # cases decode in milliseconds (a 25 MP bit-flipped TIFF in ~0.5 s); ten seconds is a hang


class CaseTimeout(BaseException):
    """Raised by the alarm inside a stuck case; a BaseException so no `except Exception` can swallow it."""


def _alarm(signum, frame):
    raise CaseTimeout


def test_seed_files_are_valid_images():
    for fmt, data in seed_files().items():
        assert load_image(data).size[0] >= MIN_SIDE, fmt


def test_every_fuzz_case_is_rgb_or_an_image_error_and_never_hangs():
    outcomes: collections.Counter = collections.Counter()
    slowest = (0.0, "")
    old = signal.signal(signal.SIGALRM, _alarm)
    faulthandler.dump_traceback_later(CASE_SECONDS * 3, exit=True)  # backstop for a hang inside C code
    try:
        for case, data in fuzz_cases(PER_FORMAT, SEED):
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                im = load_image(data)
            except ImageError as e:
                assert str(e) and "Traceback" not in str(e), case
                outcomes["error"] += 1
            except CaseTimeout:
                pytest.fail(f"{case}: load_image took more than {CASE_SECONDS} s")
            except Exception as e:  # the class of bug this test exists for
                pytest.fail(f"{case}: {type(e).__name__}: {e} escaped load_image")
            else:
                assert isinstance(im, Image.Image) and im.mode == "RGB", case
                assert min(im.size) >= MIN_SIDE, case
                im.tobytes()  # fully loaded, detached from the input
                outcomes["rgb"] += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.dump_traceback_later(CASE_SECONDS * 3, exit=True)
            slowest = max(slowest, (time.perf_counter() - t0, case))
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)
    assert sum(outcomes.values()) == PER_FORMAT * len(FORMATS) >= 2000
    assert outcomes["rgb"] > 0 and outcomes["error"] > 0, outcomes  # both outcomes are exercised
    print(f"\n{dict(outcomes)}; slowest case {slowest[1]} {slowest[0] * 1000:.1f} ms")


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"\xff\xd8\xff\xe0" + bytes(range(7, 47)), "JPEG data damaged or cut short"),  # the report
        (b"", "empty (0 bytes"),
        (b"\x89PNG\r\n\x1a\n", "PNG data damaged or cut short"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WebP data damaged or cut short"),
        (b"just some text\n", "Not an image file"),
    ],
)
def test_messages_name_the_problem_and_what_to_do(data, fragment):
    with pytest.raises(ImageError) as e:
        load_image(data)
    message = str(e.value)
    assert fragment in message
    assert any(w in message for w in ("Try another photo", "upload a photo")), message
    assert "Error" not in message and "Traceback" not in message
