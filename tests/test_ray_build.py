"""The Ray Data build on a local Ray cluster (2 CPUs): the same gallery as the single-process build (embeddings
within 1e-5; labels, ids and spec equal), resumable after a crash, and written to a Milvus store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cbir.gallery.build import build_gallery_streaming, partial_dir
from cbir.gallery.dataset import Gallery, scan_image_folder
from cbir.stores import GalleryStore, methods_without_classifiers
from conftest import TINY_MODEL
from test_build import Crashing

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent
KWARGS = dict(model_name=TINY_MODEL, weights="random", device="cpu", seed=0, threads=1)


@pytest.fixture(scope="module")
def cluster():
    from cbir.gallery.ray_build import init_ray

    init_ray(num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def assert_same_gallery(built: Gallery, reference: Gallery) -> None:
    assert list(built.labels) == list(reference.labels) and list(built.hashes) == list(reference.hashes)
    assert list(built.types) == list(reference.types) and list(built.colours) == list(reference.colours)
    assert built.spec.to_dict() == reference.spec.to_dict()
    np.testing.assert_allclose(built.embeddings, reference.embeddings, rtol=0, atol=1e-5)
    np.testing.assert_allclose(built.descriptors, reference.descriptors, rtol=0, atol=1e-5)


def test_a_build_crashed_on_ray_is_resumed_by_build_index_on_the_running_cluster(cluster, image_folder, extractor,
                                                                                 gallery, tmp_path):
    """One crash in process (two chunks written), then `build_index.py --engine ray --address` finishes it: the
    single-process gallery, every row in the Milvus store once (one test: each Ray pipeline costs its actors' start)."""
    import gc

    from cbir.gallery.ray_build import RayEmbedder, chunks_done

    records = scan_image_folder(image_folder)
    paths = [r.path for r in records]
    store = GalleryStore(f"milvus:{tmp_path / 'ray.db'}", extractor.spec.dim, methods_without_classifiers())
    first = Crashing(RayEmbedder(KWARGS, extractor.spec, workers=2).plan(paths), ok=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build_gallery_streaming(records, first, tmp_path / "g", store, chunk=20, batch_size=8)
    assert chunks_done(tmp_path / "g") == 2 and store.count() == 40
    store.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(tmp_path / "ray.db"))  # milvus-lite's file lock, for the next process
    del first
    gc.collect()  # the crashed pipeline's actors give their CPUs back

    cmd = [sys.executable, "scripts/build_index.py", str(image_folder), "--out", str(tmp_path / "g"),
           "--model", TINY_MODEL, "--random-weights", "--batch-size", "8", "--chunk", "20", "--engine", "ray",
           "--address", cluster, "--ray-workers", "2", "--store", f"milvus:{tmp_path / 'ray.db'}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 embedding actors" in out.stdout and "resuming the unfinished build" in out.stdout
    assert "(40 rows already there)" in out.stdout and f"holds {len(gallery)} rows" in out.stdout
    assert not partial_dir(tmp_path / "g").exists()
    assert_same_gallery(Gallery.load(tmp_path / "g"), gallery)
    store = GalleryStore(f"milvus:{tmp_path / 'ray.db'}", extractor.spec.dim, methods_without_classifiers())
    assert store.count() == len(gallery) and sorted(store.stored_ids()) == list(range(len(gallery)))
    np.testing.assert_allclose(store.embeddings([0, len(gallery) - 1]), gallery.embeddings[[0, -1]], atol=1e-5)
    store.close()
