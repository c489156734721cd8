import pytest

from cbir.labels import COLOURS, TYPES, Label, LabelError, parse_label


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize("garment", TYPES)
def test_every_colour_type_folder_parses(colour, garment):
    label = parse_label(f"{colour}_{garment}")
    assert label == Label(colour, garment)
    assert label.name == f"{colour}_{garment}"
    assert label.attribute("type") == garment and label.attribute("colour") == colour


def test_case_and_whitespace_are_forgiven():
    assert parse_label(" Blue_Shoes ") == Label("blue", "shoes")


@pytest.mark.parametrize(
    "folder, fragment",
    [
        ("purple_dress", "unknown colour 'purple'"),
        ("black_hat", "unknown garment type 'hat'"),
        ("blackdress", "not named colour_type"),
        ("black_dress_extra", "not named colour_type"),
        ("_dress", "not named colour_type"),
        ("", "not named colour_type"),
    ],
)
def test_bad_folder_names_name_the_folder(folder, fragment):
    with pytest.raises(LabelError) as e:
        parse_label(folder)
    assert fragment in str(e.value)
    assert repr(folder) in str(e.value)


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        Label("red", "dress").attribute("size")
