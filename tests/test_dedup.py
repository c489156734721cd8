import numpy as np

from cbir.search.dedup import collapse_duplicates


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_same_hash_and_near_duplicates_collapse_onto_the_best_ranked():
    vecs = _unit([[1, 0, 0], [0, 1, 0], [1, 0.01, 0], [0, 0, 1], [0, 1, 0]])
    hashes = np.array(["a", "b", "c", "b", "d"])  # 3 shares 1's hash; 2 is near 0; 4 equals 1 in content
    leaders, copies = collapse_duplicates(hashes, vecs, threshold=0.97)
    assert leaders.tolist() == [0, 1]
    assert copies.tolist() == [2, 3]


def test_threshold_and_distinct_items():
    vecs = _unit([[1, 0], [1, 0.3]])  # cosine 0.958
    assert collapse_duplicates(np.array(["a", "b"]), vecs, 0.97)[0].tolist() == [0, 1]
    assert collapse_duplicates(np.array(["a", "b"]), vecs, 0.95)[1].tolist() == [2]
    assert collapse_duplicates(np.array([]), np.empty((0, 2)), 0.97)[0].size == 0
    assert collapse_duplicates(np.array(["a", "b"]), vecs, None)[1].tolist() == [1, 1]  # hashes only
