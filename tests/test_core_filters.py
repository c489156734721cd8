import numpy as np
import pytest

from cbir.core.filters import label_mask, normalise_filters

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


def test_available_values_skip_empty_columns_and_values():
    from cbir.core.filters import available_values

    cols = {**COLUMNS, "colour": np.array(["", "", None, ""], dtype=object)}
    assert available_values(cols) == {"type": ["dress", "pants", "shoes"]}
    assert available_values(COLUMNS)["colour"] == ["blue", "red"]


def test_check_values_names_what_the_gallery_has():
    from cbir.core.filters import check_values

    check_values(COLUMNS, {"type": ["shoes"], "colour": []})
    with pytest.raises(ValueError, match="no type 'hat' in this gallery; it has: dress, pants, shoes"):
        check_values(COLUMNS, {"type": ["hat", "shoes"]})
    with pytest.raises(ValueError, match="no colour labels"):
        check_values({**COLUMNS, "colour": np.array([""] * 4, dtype=object)}, {"colour": ["red"]})
