"""Similarity: the registry of named methods (`registry`), balanced pairs, pairwise and per-image classifiers
(and loading them safely), training runs and evaluation."""
