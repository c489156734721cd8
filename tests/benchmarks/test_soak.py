"""The soak script's pieces that need no server: the request plan, the bad inputs, the local-only rule."""

from __future__ import annotations

import collections

import pytest
from PIL import Image

from benchmarks import soak
from cbir.images import ImageError, load_image


def test_plans_deal_exactly_the_requested_mix_to_every_client():
    plans = soak.make_plans(2000, 16, {"search": 0.7, "compare": 0.1, "random": 0.1, "bad": 0.1}, seed=0)
    assert len(plans) == 16 and {len(p) for p in plans} == {125}
    counts = collections.Counter(k for p in plans for k in p)
    assert counts == {"search": 1400, "compare": 200, "random": 200, "bad": 200}


def test_every_bad_file_is_refused_by_the_decoder(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(good)
    bad = soak.bad_inputs(tmp_path, good)
    files = [path for name, path, args in bad if path != good]
    assert len(files) == 7
    for path in files:
        with pytest.raises(ImageError):
            load_image(path)
    assert {name for name, path, _ in bad if path == good} == {"k=0", "unknown-method"}


def test_only_a_local_url_is_accepted():
    with pytest.raises(SystemExit, match="127.0.0.1"):
        soak.main(["--url", "https://example.org/", "--requests", "1"])
