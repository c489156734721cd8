"""benchmarks/finetune_full.py: the whole-photo square, training every layer, flip-averaged embeddings."""

import numpy as np
import timm
import torch
import torchvision.transforms.v2 as T
from PIL import Image, ImageOps

from benchmarks.finetune_full import embed, framed, train


def tiny_model() -> torch.nn.Module:
    """A random-init headless Lite0: the architecture family, small and fast (no weights needed)."""
    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)


def test_the_training_square_frames_the_whole_photo_as_the_border_crop_mode_does():
    photo = Image.new("RGB", (40, 20), (200, 10, 10))
    cfg = {"input_size": (3, 260, 260), "interpolation": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3,
           "crop_pct": 1.0, "crop_mode": "border"}
    sq = framed(photo, cfg, side=30)
    assert sq.shape == (3, 30, 30) and sq.dtype == torch.uint8
    rows = sq[0, :, 15].tolist()  # the middle column, top to bottom: the mean grey, the scaled 30x15 photo, grey
    assert rows[:7] == [128] * 7 and rows[22:] == [128] * 8
    assert rows[7:22] == [200] * 15
    assert sq[:, 15, :].T.tolist() == [[200, 10, 10]] * 30  # full width


def test_training_changes_every_stage_and_reports_each_epoch():
    model = tiny_model()
    first = model.conv_stem.weight.detach().clone()
    last = model.conv_head.weight.detach().clone()
    photos = torch.randint(0, 256, (6, 3, 48, 48), dtype=torch.uint8)
    losses = []
    head = train(model, photos, torch.tensor([0, 1, 2, 0, 1, 2]), 3, epochs=2, size=32, lr=1e-3, batch=3,
                 on_epoch=lambda epoch, loss: losses.append((epoch, loss)))
    assert [e for e, _ in losses] == [0, 1] and all(np.isfinite(loss) for _, loss in losses)
    assert head.weight.shape == (3, model.num_features) and not head.training
    assert not torch.equal(model.conv_stem.weight, first) and not torch.equal(model.conv_head.weight, last)


def test_flip_embedding_is_the_mean_of_the_photo_and_its_mirror():
    model = tiny_model().eval()
    transform = T.Compose([T.PILToTensor(), T.Resize((32, 32), antialias=True), T.ToDtype(torch.float32, scale=True)])
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)) for _ in range(3)]
    plain = embed(model, transform, photos)
    mirrored = embed(model, transform, [ImageOps.mirror(p) for p in photos])
    both = embed(model, transform, photos, flip=True, batch=2)
    assert plain.shape == both.shape == (3, model.num_features)
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(both, plain, atol=1e-3)
