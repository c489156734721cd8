"""benchmarks/finetune.py: the cached-trunk + trainable-tail split reproduces the real backbone; export ships only the tail."""

import json

import numpy as np
import torch

from benchmarks.finetune import main
from benchmarks.finetune_model import CUT_BLOCKS, Tail, base_model, trunk


def test_trunk_maps_through_the_tail_give_the_backbones_embedding():
    model, _, cfg = base_model()
    x = torch.randn(2, *cfg["input_size"], generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(x)
        maps = trunk(model, x)
        assert set(maps) == set(CUT_BLOCKS)
        for b in CUT_BLOCKS:
            got = Tail(model, b)(maps[b])
            assert torch.allclose(got, want, atol=1e-5), b


def test_export_writes_only_the_adapted_tensors(tmp_path, capsys):
    from safetensors.torch import load_file

    model, _, _ = base_model()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    torch.save(state, tmp_path / "w.pth")
    (tmp_path / "w.json").write_text(json.dumps({"from_block": 6}))
    main(["export", "--weights", str(tmp_path / "w.pth"), "--out", str(tmp_path / "tail.safetensors")])
    out = json.loads(capsys.readouterr().out)
    delta = load_file(str(tmp_path / "tail.safetensors"))
    assert {k.split(".")[0] if not k.startswith("blocks.") else k[:8] for k in delta} == {"blocks.6", "conv_head", "bn2"}
    assert out["params"] == sum(v.numel() for v in delta.values()) and len(out["sha256"]) == 64
    assert all(torch.equal(delta[k], state[k]) for k in delta)
    assert not np.any([k.endswith("num_batches_tracked") for k in delta])
