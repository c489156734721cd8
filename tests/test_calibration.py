"""Temperature scaling and the expected calibration error (cbir.similarity.calibration)."""

import numpy as np
import pytest

from cbir.similarity.calibration import (apply_temperature, calibration_report, expected_calibration_error,
                                         fit_temperature, negative_log_likelihood, temperature_of)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _overconfident(n=4000, c=4, seed=0):
    """Labels drawn from softmax(z), probabilities reported as softmax(3 z): over-confident by a temperature of 3."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, c))
    y = np.array([rng.choice(c, p=p) for p in _softmax(z)])
    return _softmax(3 * z), y


def test_apply_temperature_is_softmax_of_scaled_logits_and_keeps_argmax():
    z = np.random.default_rng(1).normal(size=(5, 3))
    p = _softmax(z)
    np.testing.assert_allclose(apply_temperature(p, 2.0), _softmax(z / 2), rtol=1e-5)
    assert (apply_temperature(p, 0.3).argmax(1) == p.argmax(1)).all()
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, rtol=1e-6)
    with pytest.raises(ValueError):
        apply_temperature(p, 0.0)


def test_fit_temperature_recovers_the_overconfidence_and_lowers_ece_and_nll():
    p, y = _overconfident()
    t = fit_temperature(p, y)
    assert 2.6 < t < 3.4
    r = calibration_report(p, y, t)
    assert r["ece_after"] < 0.03 < r["ece_before"]
    assert r["nll_after"] < r["nll_before"]


def test_ece_of_a_perfectly_calibrated_and_a_wrong_confident_model():
    p = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(p, np.array([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([[1.0, 0.0]] * 2), np.array([1, 1])) == pytest.approx(1.0)
    assert negative_log_likelihood(np.array([[0.5, 0.5]]), np.array([0])) == pytest.approx(np.log(2))


def test_temperature_of_old_cards_is_one():
    assert temperature_of({}) == 1.0
    assert temperature_of({"calibration": {"temperature": 1.7}}) == 1.7
