"""cbir.train.backbone: partial type labels (another source's shirt is any top) and their loss."""

import numpy as np
import torch
import torch.nn.functional as F

from cbir.train.backbone import partial_label_loss, type_targets, view_table

CLASSES = ["dress", "longsleeve", "shirt", "shoes", "tshirt"]


def test_another_sources_shirt_may_be_any_top_while_a_cc0_shirt_is_a_shirt():
    types = np.array(["shirt", "dress", "shirt"], dtype=object)
    apparel = type_targets(types, "apparel", CLASSES)
    cc0 = type_targets(types, "cc0", CLASSES)
    assert apparel[0].tolist() == [False, True, True, False, True]
    assert apparel[1].tolist() == cc0[1].tolist() == [True, False, False, False, False]
    assert cc0[0].tolist() == [False, False, True, False, False]


def test_partial_label_loss_is_cross_entropy_for_one_class_and_the_tops_mass_for_several():
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5]])
    one = torch.tensor([[True, False, False, False, False]] * 2)
    assert torch.isclose(partial_label_loss(logits, one), F.cross_entropy(logits, torch.tensor([0, 0])))
    tops = torch.from_numpy(type_targets(np.array(["shirt"] * 2, dtype=object), "catalogue", CLASSES))
    p = logits.softmax(1)
    expected = -torch.log(p[:, [1, 2, 4]].sum(1)).mean()
    assert torch.isclose(partial_label_loss(logits, tops), expected, atol=1e-6)
    assert partial_label_loss(logits, tops) < partial_label_loss(logits, one[:, [1, 0, 2, 3, 4]])  # any top is easier


def test_a_view_the_cache_lacks_falls_back_to_the_photo_or_its_mirror():
    views = ("plain", "flip", "crop1", "crop2", "crop3")
    with_crops = view_table(10, 2, ["plain", "flip", "crop1", "crop2", "crop3"], views)
    assert with_crops.tolist() == [[10, 12, 14, 16, 18], [11, 13, 15, 17, 19]]
    without = view_table(0, 3, ["plain", "flip"], views)
    assert without.tolist() == [[0, 3, 0, 3, 0], [1, 4, 1, 4, 1], [2, 5, 2, 5, 2]]
