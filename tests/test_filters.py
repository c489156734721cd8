import numpy as np
import pytest

from cbir.filters import label_mask, normalise_filters

COLUMNS = {"type": np.array(["shoes", "dress", "shoes", "pants"], dtype=object),
           "colour": np.array(["red", "red", "blue", "blue"], dtype=object)}


def test_no_filter_is_none():
    assert label_mask(COLUMNS, None) is None
    assert label_mask(COLUMNS, {"type": [], "colour": ""}) is None


def test_mask_is_and_across_columns_or_within():
    assert label_mask(COLUMNS, {"type": ["shoes"]}).tolist() == [True, False, True, False]
    assert label_mask(COLUMNS, {"type": ["shoes", "pants"], "colour": ["blue"]}).tolist() == [False, False, True, True]
    assert label_mask(COLUMNS, {"colour": "red"}).tolist() == [True, True, False, False]


def test_unknown_column_is_clear_error():
    with pytest.raises(ValueError, match="label columns"):
        label_mask(COLUMNS, {"size": ["M"]})


def test_normalise_sorts_and_dedups():
    assert normalise_filters({"type": ["b", "a", "a", ""], "colour": []}) == {"type": ("a", "b")}
