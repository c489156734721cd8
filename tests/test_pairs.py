import numpy as np
import pytest

from cbir.similarity.pairs import (
    available_pairs,
    build_task_pairs,
    dedupe,
    load_pairs,
    sample_pairs,
    save_pairs,
    split_images,
    validation_split,
)


def _toy(n_per_class=20):
    colours = np.repeat(["black", "blue", "red", "white"], 3 * n_per_class)
    types = np.tile(np.repeat(["dress", "pants", "shoes"], n_per_class), 4)
    labels = np.char.add(np.char.add(colours, "_"), types)
    hashes = np.array([f"h{i}" for i in range(len(labels))])
    return colours, types, labels, hashes


def test_split_is_by_image_stratified_and_deterministic():
    _, _, labels, hashes = _toy()
    s1 = split_images(labels, hashes, test_fraction=0.25, seed=3)
    s2 = split_images(labels, hashes, test_fraction=0.25, seed=3)
    s3 = split_images(labels, hashes, test_fraction=0.25, seed=4)
    assert np.array_equal(s1.train, s2.train) and np.array_equal(s1.test, s2.test)
    assert not np.array_equal(s1.test, s3.test)
    assert not set(s1.train) & set(s1.test)
    assert len(s1.train) + len(s1.test) == len(labels)
    for lab in np.unique(labels):  # every class is on both sides, a quarter held out
        assert (labels[s1.test] == lab).sum() == 5


def test_validation_split_divides_the_training_rows_only_stratified_by_label():
    _, _, labels, hashes = _toy()
    outer = split_images(labels, hashes, test_fraction=0.3, seed=4)
    fit, val = validation_split(labels, hashes, outer.train, 0.2, seed=4)
    assert sorted(np.concatenate([fit, val]).tolist()) == outer.train.tolist()
    assert not set(val) & set(outer.test) and not set(fit) & set(val)
    assert len(val) == 12 * 3  # 12 labels of 14 training images each: 0.2 of 14 rounds to 3
    assert {str(lab) for lab in labels[val]} == set(labels.astype(str))
    again = validation_split(labels, hashes, outer.train, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((fit, val), again))
    other = validation_split(labels, hashes, outer.train, 0.2, seed=5)
    assert not np.array_equal(other[1], val)


def test_dedupe_keeps_one_copy_and_drops_conflicts():
    labels = np.array(["red_dress", "red_dress", "red_shoes", "red_dress", "blue_pants"])
    hashes = np.array(["a", "a", "b", "b", "c"])  # 'a' twice in one class, 'b' in two classes
    keep, n_dup, n_conf = dedupe(labels, hashes)
    assert keep.tolist() == [0, 4]
    assert (n_dup, n_conf) == (1, 2)


def test_split_drops_duplicates_so_no_file_is_on_both_sides():
    _, _, labels, hashes = _toy()
    hashes = hashes.copy()
    hashes[1] = hashes[0]  # an identical file twice in one class
    split = split_images(labels, hashes, test_fraction=0.3, seed=0)
    used = np.concatenate([split.train, split.test])
    assert len(set(hashes[used])) == len(used)
    assert split.n_duplicates == 1


def test_available_pairs_counts():
    assert available_pairs(np.array(["a", "a", "a", "b"])) == (3, 3)


def test_sample_pairs_balanced_distinct_and_valid():
    colours, types, _, _ = _toy()
    pool = np.arange(0, len(types), 2)
    p = sample_pairs(types, pool, 300, np.random.default_rng(0))
    assert len(p) == 300 and p.n_positive == 150
    assert np.all(np.isin(p.left, pool)) and np.all(np.isin(p.right, pool))
    assert np.all(p.left != p.right)
    assert np.array_equal(types[p.left] == types[p.right], p.label.astype(bool))
    keys = {tuple(sorted(x)) for x in zip(p.left.tolist(), p.right.tolist())}
    assert len(keys) == 300  # no pair drawn twice, in either order


def test_sample_pairs_refuses_impossible_requests():
    keys = np.array(["a", "a", "b", "b"])
    with pytest.raises(ValueError, match="cannot draw 3 positive"):
        sample_pairs(keys, np.arange(4), 6, np.random.default_rng(0))


def test_task_pairs_counts_and_no_image_shared_between_train_and_test():
    colours, types, labels, hashes = _toy(40)
    split = split_images(labels, hashes, test_fraction=0.3, seed=0)
    pairs = build_task_pairs({"type": types, "colour": colours}, split, n_pairs=5692, seed=0)
    for task, keys in (("type", types), ("colour", colours)):
        train, test = pairs[task]["train"], pairs[task]["test"]
        assert len(train) + len(test) == 5692
        assert train.n_positive * 2 == len(train) and test.n_positive * 2 == len(test)
        assert abs(len(test) / 5692 - 0.3) < 0.01
        train_imgs = set(train.left) | set(train.right)
        test_imgs = set(test.left) | set(test.right)
        assert not train_imgs & test_imgs
        assert train_imgs <= set(split.train) and test_imgs <= set(split.test)
        assert np.array_equal(keys[test.left] == keys[test.right], test.label.astype(bool))


def test_task_pairs_deterministic_by_seed():
    colours, types, labels, hashes = _toy()
    split = split_images(labels, hashes, seed=0)
    a = build_task_pairs({"type": types, "colour": colours}, split, n_pairs=400, seed=1)
    b = build_task_pairs({"type": types, "colour": colours}, split, n_pairs=400, seed=1)
    c = build_task_pairs({"type": types, "colour": colours}, split, n_pairs=400, seed=2)
    assert np.array_equal(a["type"]["train"].left, b["type"]["train"].left)
    assert np.array_equal(a["colour"]["test"].right, b["colour"]["test"].right)
    assert not np.array_equal(a["type"]["train"].left, c["type"]["train"].left)


def test_pairs_save_load_roundtrip(tmp_path):
    colours, types, labels, hashes = _toy()
    split = split_images(labels, hashes, seed=0)
    pairs = build_task_pairs({"type": types, "colour": colours}, split, n_pairs=200, seed=0)
    save_pairs(tmp_path / "pairs.npz", pairs, split, {"seed": 0})
    loaded, split2, meta = load_pairs(tmp_path / "pairs.npz")
    assert meta["seed"] == 0 and meta["split"]["test_images"] == len(split.test)
    assert np.array_equal(split2.test, split.test)
    for task in pairs:
        for part in ("train", "test"):
            assert np.array_equal(loaded[task][part].left, pairs[task][part].left)
            assert np.array_equal(loaded[task][part].label, pairs[task][part].label)
