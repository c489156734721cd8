"""PCA reduction with whitening and float16 storage helpers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.reduction import PCAReduction, float16_error, float16_roundtrip, to_float16


def _data(n: int = 400, d: int = 48, seed: int = 0) -> np.ndarray:
    """Correlated vectors with a decaying spectrum and a non-zero mean, like CNN features."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d)) * (np.arange(1, d + 1) ** -0.7)
    return (z @ np.linalg.qr(rng.standard_normal((d, d)))[0] + 3.0).astype(np.float32)


def test_whitened_output_has_requested_dims_and_unit_variance() -> None:
    x = _data()
    pca = PCAReduction.fit(x, 16, whiten=True)
    z = pca.transform(x)
    assert z.shape == (len(x), 16) and z.dtype == np.float32
    assert (pca.dim, pca.in_dim) == (16, x.shape[1])
    np.testing.assert_allclose(z.var(axis=0, ddof=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.corrcoef(z, rowvar=False), np.eye(16), atol=1e-3)  # decorrelated too
    assert pca.transform(x[0]).shape == (16,)


def test_whitening_is_exact_with_the_randomized_solver() -> None:
    x = _data(n=700, d=600, seed=1)  # large enough for sklearn's randomized SVD
    pca = PCAReduction.fit(x, 20, whiten=True, seed=3)
    np.testing.assert_allclose(pca.transform(x).var(axis=0, ddof=1), 1.0, atol=1e-4)


def test_without_whitening_variance_is_the_explained_variance() -> None:
    x = _data()
    pca = PCAReduction.fit(x, 8, whiten=False)
    assert not pca.whiten and np.all(pca.scale == 1)
    np.testing.assert_allclose(pca.transform(x).var(axis=0, ddof=1), pca.explained_variance, rtol=1e-3)
    assert np.all(np.diff(pca.explained_variance) <= 0)
    total = float(x.astype(np.float64).var(axis=0, ddof=1).sum())
    assert 0 < pca.explained_variance_ratio(total) <= 1


def test_save_load_round_trip_is_identical(tmp_path) -> None:
    x = _data()
    pca = PCAReduction.fit(x, 12)
    path = pca.save(tmp_path / "pca.npz")
    assert path == tmp_path / "pca.npz" and path.is_file()
    back = PCAReduction.load(path)
    assert back.whiten == pca.whiten
    for name in ("mean", "components", "explained_variance", "scale"):
        a, b = getattr(pca, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(back.transform(x), pca.transform(x))


def test_load_refuses_other_files(tmp_path) -> None:
    np.savez(tmp_path / "other.npz", header_json=np.frombuffer(b'{"format": "x"}', dtype=np.uint8))
    with pytest.raises(ValueError, match="not a saved PCAReduction"):
        PCAReduction.load(tmp_path / "other.npz")


def test_transform_of_the_gallery_is_reproducible() -> None:
    x = _data(n=700, d=600, seed=2)
    a = PCAReduction.fit(x, 24, seed=5)
    b = PCAReduction.fit(x, 24, seed=5)
    assert np.array_equal(a.transform(x), b.transform(x))
    assert np.array_equal(a.transform(x), a.transform(x))
    np.testing.assert_allclose(a.transform(x[:50]), a.transform(x)[:50], atol=1e-5)


def test_bad_dims_are_clear_errors() -> None:
    x = _data(n=30, d=10)
    with pytest.raises(ValueError, match="dim"):
        PCAReduction.fit(x, 11)
    with pytest.raises(ValueError, match="dim"):
        PCAReduction.fit(x, 0)
    pca = PCAReduction.fit(x, 4)
    with pytest.raises(ValueError, match="10 columns"):
        pca.transform(np.zeros((2, 9), np.float32))


def test_float16_round_trip() -> None:
    x = _data()
    y = float16_roundtrip(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert to_float16(x).dtype == np.float16 and to_float16(x).nbytes == x.nbytes // 2
    err = float16_error(x)
    assert 0 < err["max_rel_l2"] < 1e-3 and err["max_abs"] < 1e-2
    assert np.array_equal(float16_roundtrip(y), y)  # already representable: a second trip changes nothing
    with pytest.raises(ValueError, match="overflow float16"):
        to_float16(np.array([1.0, 7e4], np.float32))
