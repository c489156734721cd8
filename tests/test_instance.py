"""cbir.similarity.instance: the seeded edit, same-picture matching and instance R@k."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cbir.images import load_image
from cbir.index import EmbeddingIndex
from cbir.similarity.instance import PictureMatcher, edited_copy, instance_markdown, instance_recall, thumbnail


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_the_edit_is_seeded_and_shrinks_the_photo(gallery):
    src = gallery.image_bytes(0)[0]
    assert edited_copy(src, 3) == edited_copy(src, 3) != edited_copy(src, 4)
    copy = edited_copy(src, 3)
    assert copy[:3] == b"\xff\xd8\xff" and min(load_image(copy).size) == 200  # a JPEG, shorter side 200 px


class _Pictures:
    """A stand-in gallery of in-memory photos (what PictureMatcher reads)."""

    def __init__(self, images: list[bytes]) -> None:
        self.images = images

    def image_bytes(self, i: int):
        return self.images[i], ".png"


def test_a_re_encoded_copy_is_the_same_picture_and_another_photo_is_not():
    rng = np.random.default_rng(0)
    photo = lambda: Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((240, 180), Image.BICUBIC)
    a = photo()  # smooth, as photos are at 32 x 32
    jpeg = io.BytesIO()
    a.resize((200, 150)).save(jpeg, format="JPEG", quality=90)  # resized and re-encoded: same picture
    b = photo()
    same = PictureMatcher(_Pictures([_png(a), jpeg.getvalue(), _png(b)]))
    assert same(0, 1) and same(1, 0) and not same(0, 2)
    assert thumbnail(_png(a)).shape == (32, 32, 3)


def test_instance_recall_counts_the_source_and_optionally_the_same_picture(gallery):
    x = gallery.embeddings[:6]
    index = EmbeddingIndex(x)
    hashes = np.array(["a", "b", "c", "d", "e", "f"])
    queries = x[[1, 2]] + 1e-3  # query 0 finds row 1 (its source); query 1 finds row 2, the source is row 4
    r = instance_recall("cosine", index, queries, np.array([1, 4]), hashes, ks=(1,))
    assert r == {"r@1": 0.5, "queries": 2}
    pictures = lambda a, b: {a, b} == {4, 2}  # rows 2 and 4 are files of one picture
    r = instance_recall("cosine", index, queries, np.array([1, 4]), hashes, ks=(1,), same_picture=pictures)
    assert r["r@1"] == 0.5 and r["same_picture_r@1"] == 1.0
    table = instance_markdown({"cosine": r}, {"cosine": "Cosine"}, ks=(1,))
    assert "| Method | R@1 | same picture R@1 | Queries |" in table and "| Cosine | 0.500 | 1.000 | 2 |" in table


def test_near_duplicate_groups_link_transitively_and_by_hash():
    from cbir.similarity.instance import near_duplicate_groups

    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.96, 0.28, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    g = near_duplicate_groups(v, 0.985)
    assert g[0] == g[1] == g[2] and len({g[2], g[3], g[4]}) == 3  # 0-1 and 1-2 alike, so 0-2 joined
    g2 = near_duplicate_groups(v, 0.999, hashes=np.array(["h", "x", "y", "z", "h"]))
    assert g2[0] == g2[4] and g2[0] != g2[1]


def test_keep_groups_apart_moves_a_split_products_test_shots_to_training():
    from cbir.similarity.instance import keep_groups_apart

    groups = np.array([0, 0, 1, 1, 2, 3])
    train, test = keep_groups_apart(np.array([0, 2, 3]), np.array([1, 4, 5]), groups)
    assert list(train) == [0, 1, 2, 3] and list(test) == [4, 5]
    assert not set(groups[train]) & set(groups[test])
