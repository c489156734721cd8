import numpy as np

from cbir.ui.plots import QUERY, RESULT, gallery_map, pca_2d, score_histogram


def test_histogram_counts_every_score_and_marks_the_cut():
    scores = np.r_[np.linspace(0, 1, 101), -np.inf]
    df = score_histogram(scores, kth_score=0.9, bins=10)
    assert df["count"].sum() == 101 and len(df) == 10
    assert df[df.part == "top-k"]["score"].min() > 0.85 and (df.part == "top-k").sum() == 1
    assert score_histogram(np.array([-np.inf]), 0.0).empty


def test_pca_map_spreads_along_the_main_axis_and_marks_query_and_results():
    rng = np.random.default_rng(0)
    v = np.c_[rng.normal(0, 10, 50), rng.normal(0, 1, 50), rng.normal(0, 0.1, 50)]
    mean, axes = pca_2d(v)
    assert abs(axes[0, 0]) > 0.99 and abs(axes[1, 1]) > 0.99
    df = gallery_map(v, ["a"] * 25 + [""] * 25, query=v[3], results=[3, 4])
    assert len(df) == 53 and set(df.group) == {"a", "unlabelled", RESULT, QUERY}
    q = df[df.group == QUERY].iloc[0]
    g3 = df[(df.group == "a") & (df["index"] == 3)].iloc[0]
    assert np.isclose(q.x, g3.x) and np.isclose(q.y, g3.y)  # the query lands where its gallery twin is
    assert df[df.group == RESULT]["index"].tolist() == [3, 4]
