"""cbir.train.photos and cbir.train.splits: a photo folder read without embedding, in a gallery's row order, and the
splits every training step shares (test rows never in training, validation cut from training rows only)."""

from cbir.train.photos import PhotoSet
from cbir.train.splits import TEST_FRACTIONS, VALIDATION_FRACTION, fit_validation_splits, source_splits


def test_a_photo_set_has_the_gallerys_rows_and_the_splits_keep_test_photos_out(image_folder, gallery):
    photos = PhotoSet.scan(image_folder)
    assert len(photos) == len(gallery)
    assert photos.labels.tolist() == gallery.labels.astype(str).tolist()
    assert photos.hashes.tolist() == gallery.hashes.astype(str).tolist()
    assert set(photos.types) == set(gallery.types) and set(photos.colours) == set(gallery.colours)
    assert photos.image(0).size == gallery.image(0).size

    # the same cut from photos and from the gallery: the backbone and the attribute models share their test photos
    by_photos, by_gallery = source_splits({"apparel": photos}, 0), source_splits({"apparel": gallery}, 0)
    (train, test), (g_train, g_test) = by_photos["apparel"], by_gallery["apparel"]
    assert train.tolist() == g_train.tolist() and test.tolist() == g_test.tolist()
    assert not set(train) & set(test) and 0 < len(test) <= TEST_FRACTIONS["apparel"] * len(photos) + len(set(photos.labels))
    fit, val = fit_validation_splits({"apparel": photos}, {"apparel": train}, 0)["apparel"]
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    assert 0 < len(val) <= VALIDATION_FRACTION * len(train) + len(set(photos.labels))  # at least one per label
