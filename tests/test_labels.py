import pytest

from cbir.gallery.labels import COLOURS, GARMENT_TYPES, TYPES, Label, LabelError, parse_label


@pytest.mark.parametrize("colour", COLOURS)
@pytest.mark.parametrize("garment", TYPES)
def test_every_colour_type_folder_parses(colour, garment):
    label = parse_label(f"{colour}_{garment}")
    assert label == Label(colour, garment)
    assert label.name == f"{colour}_{garment}"
    assert label.attribute("type") == garment and label.attribute("colour") == colour


def test_case_and_whitespace_are_forgiven():
    assert parse_label(" Blue_Shoes ") == Label("blue", "shoes")


@pytest.mark.parametrize("garment", GARMENT_TYPES)
def test_a_type_folder_gives_a_type_and_no_colour(garment):
    label = parse_label(garment)  # the CC0 clothing dataset: dress/, hat/, longsleeve/, ...
    assert label == Label(None, garment) and label.name == garment
    assert label.attribute("type") == garment and label.attribute("colour") is None


@pytest.mark.parametrize(
    "folder, colour, garment",
    [
        ("black_hat", "black", "hat"),  # a known colour with any garment word: colour and type
        ("purple_dress", None, None),  # unknown colour: the whole name is the label
        ("blackdress", None, None),
        ("black_dress_extra", None, None),
        ("summer collection", None, None),
    ],
)
def test_any_other_folder_name_is_a_label(folder, colour, garment):
    label = parse_label(folder)
    assert (label.colour, label.type) == (colour, garment)
    assert label.name == folder.lower()


@pytest.mark.parametrize("folder", ["", "  ", "_", "__"])
def test_empty_folder_names_name_the_folder(folder):
    with pytest.raises(LabelError) as e:
        parse_label(folder)
    assert "empty" in str(e.value) and repr(folder) in str(e.value)


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        Label("red", "dress").attribute("size")
