"""benchmarks/hybrid_clip.py: the saturating class term of the instance-retrieval experiment."""

import numpy as np

from benchmarks.hybrid_clip import boost, clip


def test_clip_saturates_above_tau_and_keeps_the_order_below():
    a = np.array([0.0, 0.2, 0.45, 0.5, 0.8, 1.0], np.float32)
    np.testing.assert_allclose(clip(a, 0.5), [0.0, 0.4, 0.9, 1.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(clip(a, 1.0), a)  # tau = 1: the shipped hybrid's class term
    below = a[a < 0.5]
    assert np.all(np.diff(clip(below, 0.5)) > 0)


def test_boost_is_zero_for_ordinary_pairs_and_one_for_an_identical_photo():
    c = np.array([0.2, 0.8, 0.9, 1.0], np.float32)
    np.testing.assert_allclose(boost(c, 0.8), [0.0, 0.0, 0.5, 1.0], rtol=1e-5, atol=1e-6)
