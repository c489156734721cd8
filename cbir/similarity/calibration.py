"""Calibrated class probabilities: temperature scaling (Guo et al., "On calibration of modern neural networks",
2017) fitted by the negative log-likelihood on validation photos, and the expected calibration error.

A logistic regression's probabilities are a softmax of its logits, so p^(1/T), renormalised, is the softmax of
logits / T: the temperature is applied to fitted probabilities without the estimator's internals, keeps the
argmax (accuracy) as it is, and is one number per task stored in the classifier's card (settings as data).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy.optimize import minimize_scalar

CARD_KEY = "calibration"  # card[CARD_KEY] = {"temperature": T, "method": ..., "ece_before": ..., ...}
ECE_BINS = 15
LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
_EPS = 1e-12


def temperature_of(card: Mapping[str, Any]) -> float:
    """The card's fitted temperature; 1.0 (the fitted probabilities as they are) for cards written before it."""
    return float((card.get(CARD_KEY) or {}).get("temperature", 1.0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(N, C) softmax(logits / T) from softmax(logits): p^(1/T) renormalised per row (in log space, stable)."""
    p = np.asarray(probabilities, np.float64)
    if temperature == 1.0:
        return p.astype(np.float32)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.log(np.clip(p, _EPS, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean -log p(true class) of (N, C) probabilities and (N,) true column indices."""
    p = np.asarray(probabilities, np.float64)
    return float(-np.log(np.clip(p[np.arange(len(p)), np.asarray(truth)], _EPS, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the validation NLL of (N, C) probabilities against (N,) true column indices."""
    if len(truth) == 0:
        raise ValueError("fitting a temperature needs at least one labelled validation photo")
    res = minimize_scalar(lambda lt: negative_log_likelihood(apply_temperature(probabilities, np.exp(lt)), truth),
                          bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class confidence: sum over equal-width confidence bins of |accuracy - confidence|, weighted by
    the bin's share of photos."""
    p = np.asarray(probabilities, np.float64)
    if not len(p):
        return float("nan")
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    right = (pred == np.asarray(truth)).astype(np.float64)
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    gap = np.abs(np.bincount(b, right, bins) - np.bincount(b, conf, bins))  # |sum right - sum conf| per bin
    return float(gap.sum() / len(p)) if n.sum() else float("nan")


def calibration_report(probabilities: np.ndarray, truth: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE, NLL and accuracy before and after the temperature, on the photos given."""
    after = apply_temperature(probabilities, temperature)
    return {
        "temperature": round(float(temperature), 4),
        "photos": int(len(truth)),
        "accuracy": float((np.asarray(probabilities).argmax(1) == np.asarray(truth)).mean()),
        "ece_before": expected_calibration_error(probabilities, truth),
        "ece_after": expected_calibration_error(after, truth),
        "nll_before": negative_log_likelihood(probabilities, truth),
        "nll_after": negative_log_likelihood(after, truth),
    }


def card_with_temperature(card: Mapping[str, Any], report: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The classifier card with its fitted temperature and how it was fitted (settings as data)."""
    return {**card, CARD_KEY: {**report, "method": "temperature scaling, validation NLL", "fitted_on": source}}
