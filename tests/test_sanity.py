"""The check users make first, on real features (pretrained EfficientNet-Lite2 from its pip package):
for every learned method, an image compared with itself scores at least as high as with any other image."""

from pathlib import Path

import numpy as np
import pytest

from cbir.embed.colour import colour_descriptors
from cbir.gallery.dataset import build_gallery, scan_image_folder
from cbir.embed.extractor import DEFAULT_MODEL, FeatureExtractor
from cbir.index import EmbeddingIndex
from cbir.similarity.registry import TASK_CHOICES, get_method, list_methods
from cbir.similarity.training import train

CC0 = Path(__file__).parent / "data" / "cc0"


@pytest.fixture(scope="module")
def real_run(image_folder):
    extractor = FeatureExtractor(DEFAULT_MODEL, weights="pretrained", device="cpu")
    gallery, errors = build_gallery(scan_image_folder(image_folder), extractor, batch_size=16, progress=False)
    assert not errors and not gallery.spec.is_random
    run = train(gallery, n_pairs=300, seed=0, progress=False)
    photos = sorted(CC0.glob("*.jpg"))
    vecs = np.vstack([gallery.embeddings, extractor.embed_images(photos, batch_size=4)])
    desc = np.vstack([gallery.descriptors, colour_descriptors(photos, gallery.colour_spec)])
    return run, vecs, desc


@pytest.mark.parametrize("method", [m for m in list_methods() if get_method(m).learned])
@pytest.mark.parametrize("task", TASK_CHOICES)
def test_an_image_scores_highest_against_itself(real_run, method, task):
    run, vecs, desc = real_run
    index = EmbeddingIndex(vecs, desc)
    m = get_method(method)
    scores = m.score(vecs, index, task=task, classifiers=run.classifiers, query_descriptors=desc)
    self_scores = np.diag(scores)
    worst = int(np.argmax(scores.max(axis=1) - self_scores))
    assert np.all(self_scores >= scores.max(axis=1) - 1e-6), (
        f"{method}/{task}: image {worst} scores {self_scores[worst]:.4f} against itself "
        f"but {scores[worst].max():.4f} against image {int(scores[worst].argmax())}"
    )
    pairs = m.score_pairs(vecs, vecs, task=task, classifiers=run.classifiers, descriptors=(desc, desc))
    np.testing.assert_allclose(pairs, self_scores, rtol=1e-4, atol=1e-5)
