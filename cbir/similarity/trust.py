"""Loading .skops classifiers safely: every type a file would construct must be on this project's allow-list."""

from __future__ import annotations

import json
import os
from typing import Any

import skops.io as sio

# Types a classifier file may contain; anything else in a .skops file is refused at load time.
TRUSTED_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._logistic.LogisticRegressionCV",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn.decomposition._pca.PCA",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.float32",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "numpy.bool_",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
    }
)


def skops_types(model_path: str | os.PathLike) -> set[str]:
    """Every type a .skops file would construct (from its schema), not only the ones skops itself distrusts."""
    import zipfile

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    try:
        with zipfile.ZipFile(model_path) as z:
            walk(json.loads(z.read("schema.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{model_path} is not a readable skops file ({e}): re-train or re-download it") from None
    return found


def load_trusted(model_path: str | os.PathLike) -> Any:
    """skops.io.load, refusing any type outside TRUSTED_TYPES (even ones skops trusts by default)."""
    untrusted = sio.get_untrusted_types(file=model_path)
    unexpected = sorted((skops_types(model_path) | set(untrusted)) - TRUSTED_TYPES)
    if unexpected:
        raise ValueError(
            f"{model_path} contains types this project does not trust: {unexpected}; it was not loaded. "
            "Use classifiers made by scripts/train_classifiers.py from a source you trust."
        )
    return sio.load(model_path, trusted=untrusted)
