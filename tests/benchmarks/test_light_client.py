"""The light client against the app on the fixture gallery: a search through Gradio's REST API answers as
gradio_client's does, the phases count every request, a bad photo is a counted failure, and the forward timing runs.
No timing is asserted (that is the benchmark's job, docs/benchmarks.md)."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from benchmarks import light_client
from serving import served


@pytest.fixture(scope="module")
def url(gallery_dir, classifier_dir):
    with served(["--gallery", str(gallery_dir), "--classifiers", str(classifier_dir), "--device", "cpu"]) as u:
        yield u


@pytest.fixture(scope="module")
def photos(gallery, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lc")
    paths = []
    for i in (2, 7):
        paths.append(folder / f"q{i}.png")
        gallery.image(i).save(paths[-1])
    return [(p.name, p.read_bytes()) for p in paths]


def test_a_light_search_is_the_search_answer(url, photos, tmp_path):
    client = light_client.LightClient(url)
    try:
        light = client.search(photos[0][1], photos[0][0], method="cosine", k=4)
    finally:
        client.close()
    (tmp_path / "q.png").write_bytes(photos[0][1])
    full = Client(url, verbose=False).predict(handle_file(str(tmp_path / "q.png")), "cosine", k=4, api_name="/search")
    assert [r["index"] for r in light["results"]] == [r["index"] for r in full["results"]]


def test_phases_count_every_request_and_failures(url, photos):
    phase = light_client.run_phase(url, photos, clients=3, requests=7, k=3)
    assert len(phase.seconds) == 7 and not phase.failures and phase.summary()["per_second"] > 0
    bad = light_client.run_phase(url, [("bad.png", b"not an image")], clients=1, requests=2, k=3)
    assert len(bad.failures) == 2 and "not an image" in bad.failures[0].lower()


def test_forward_timing_runs_on_the_gallery_backbone(gallery_dir, photos):
    out = light_client.forward_ms(str(gallery_dir), photos, repeats=1, threads=None)
    assert out["forward_median_ms"] > 0 and out["embed_median_ms"] > 0
