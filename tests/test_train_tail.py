"""cbir.train.tail and export: the cached-trunk + trainable-tail split reproduces the real backbone; export ships only the tail."""

import json

import numpy as np
import torch

from cbir.train.backbone import export_tail
from cbir.train.tail import CACHED_BLOCKS, CUT_BLOCKS, Tail, base_model, training_view, trunk


def test_trunk_maps_through_the_tail_give_the_backbones_embedding():
    model, _, cfg = base_model()
    x = torch.randn(2, *cfg["input_size"], generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(x)
        maps = trunk(model, x, CUT_BLOCKS)
        assert set(maps) == set(CUT_BLOCKS) and set(trunk(model, x)) == set(CACHED_BLOCKS)
        for b in CUT_BLOCKS:
            got = Tail(model, b)(maps[b])
            assert torch.allclose(got, want, atol=1e-5), b


def test_export_writes_only_the_adapted_tensors(tmp_path):
    from safetensors.torch import load_file

    model, _, _ = base_model()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    torch.save(state, tmp_path / "w.pth")
    (tmp_path / "w.json").write_text(json.dumps({"from_block": 6}))
    out = export_tail(tmp_path / "w.pth", tmp_path / "tail.safetensors", dtype="float32")
    delta = load_file(str(tmp_path / "tail.safetensors"))
    assert {k.split(".")[0] if not k.startswith("blocks.") else k[:8] for k in delta} == {"blocks.6", "conv_head", "bn2"}
    assert out["params"] == sum(v.numel() for v in delta.values()) and len(out["sha256"]) == 64
    assert all(torch.equal(delta[k], state[k]) for k in delta)
    assert not np.any([k.endswith("num_batches_tracked") for k in delta])


def test_a_training_view_is_a_seeded_crop_of_half_to_all_of_the_photo():
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8))
    a, again, other_row, other_view = (training_view(photo, "crop1", 3), training_view(photo, "crop1", 3),
                                       training_view(photo, "crop1", 4), training_view(photo, "crop2", 3))
    assert np.array_equal(np.asarray(a), np.asarray(again))
    assert not np.array_equal(np.asarray(a), np.asarray(other_row)) and not np.array_equal(np.asarray(a), np.asarray(other_view))
    areas = [np.prod(training_view(photo, f"crop{v}", r).size) / (120 * 90) for v in range(1, 9) for r in range(20)]
    assert 0.45 < min(areas) and max(areas) <= 1.0 and np.std(areas) > 0.05
