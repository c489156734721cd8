"""Loading a search engine: the gallery, the extractor that embeds queries as the gallery was embedded, and the
attribute models (named, or those shipped with the gallery's backbone), from local folders or the Hub."""

from __future__ import annotations

from typing import Optional

from cbir.embed.extractor import FeatureExtractor
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.gallery.dataset import Gallery
from cbir.gallery.demo import calibration_photos
from cbir.search.engine import SearchEngine
from cbir.similarity.classifiers import ClassifierSet


def shipped_fallback(gallery: Gallery) -> Optional[ClassifierSet]:
    """The attribute models that come with the gallery's backbone (cbir.similarity.predicted), or None: what a
    gallery is served with when no classifiers are named."""
    from cbir.similarity.predicted import shipped_classifiers

    return shipped_classifiers(gallery.spec, gallery.colour_spec)


def extractor_for(
    spec: EmbeddingSpec,
    weights: Optional[str] = None,
    random_weights: bool = False,
    device: str = "auto",
    runtime: str = "auto",
) -> tuple[FeatureExtractor, bool]:
    """The extractor that embeds queries the way a gallery was embedded, and whether weights may differ.

    A random-init gallery gets the same seeded init. A pretrained one gets the weights its backbone's
    registered source provides (cbir.embed.backbones: a pip package, or the Hub via timm) or the `weights` file, and a WeightsUnavailableError if they cannot be had, unless `random_weights`
    asks for a smoke run (random-init queries; the engine's weights_warning says so).
    """
    seed = 0 if spec.seed is None else int(spec.seed)
    if spec.is_random:
        if weights:
            raise BackboneMismatchError(
                f"the gallery was embedded with random-init weights ({spec.describe()}); "
                f"a weights file ({weights}) would not match it"
            )
        return FeatureExtractor(spec.model, "random", device, seed, runtime, revision=spec.revision), False
    if random_weights:
        return FeatureExtractor(spec.model, "random", device, seed, runtime, revision=spec.revision), True
    return FeatureExtractor(
        spec.model, weights or "pretrained", device, runtime=runtime, revision=spec.revision, quantization=spec.quantization,
        calibration=calibration_photos,
    ), False


def load_engine(
    gallery: str,
    classifiers: Optional[str] = None,
    weights: Optional[str] = None,
    random_weights: bool = False,
    device: str = "auto",
    runtime: str = "auto",
    gallery_revision: Optional[str] = None,
    classifiers_revision: Optional[str] = None,
    store: Optional[str] = None,
    shipped: bool = False,
) -> SearchEngine:
    """Load a gallery and classifiers (local folders or Hub ids, optionally pinned to revisions) and the backbone.

    `store` (a cbir.stores URI such as `faiss` or `milvus:./gallery.db`) serves searches from a vector
    store, filled from the gallery where it lacks rows; None or `numpy` keeps the in-process exact search.
    `shipped`: with no `classifiers`, use the attribute models that come with the gallery's backbone, if any.
    """
    g = Gallery.load(gallery, revision=gallery_revision)
    extractor, allow_mismatch = extractor_for(g.spec, weights, random_weights, device, runtime)
    clf = ClassifierSet.load(classifiers, revision=classifiers_revision) if classifiers else None
    if clf is None and shipped and not allow_mismatch:
        clf = shipped_fallback(g)
    engine = SearchEngine(g, extractor, clf, allow_weights_mismatch=allow_mismatch)
    if store:
        from cbir.stores import open_gallery_store, parse_store_uri

        if parse_store_uri(store).backend != "numpy":  # numpy = this engine's own exact in-process search
            engine.store = open_gallery_store(store, g, clf, engine.available_methods())
    return engine
