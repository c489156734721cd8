"""Tiny random-weight `transformers` encoders saved with save_pretrained, for offline tests of hf: backbones.

Built from configs (a layer or two, 16-wide, 32 px images) with a word-level tokenizer made by the `tokenizers`
library and wrapped for `transformers`: the real loading path (AutoModel, AutoImageProcessor, AutoTokenizer),
no download.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cbir.gallery.labels import COLOURS, TYPES

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
WORDS = [*COLOURS, *TYPES, "a", "summer", "winter", "like", "this", "but", "in"]
TEXT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=16, pad_token_id=0, bos_token_id=2, eos_token_id=3)
VISION = dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
              num_attention_heads=2)


def tiny_tokenizer(max_length: int = 16):
    """A word-level tokenizer ([BOS] words [EOS]) from the `tokenizers` library, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", vocab["[BOS]"]), ("[EOS]", vocab["[EOS]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]",
        model_max_length=max_length,
    )


def _save(model, processor, folder: Path, tokenizer=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def save_tiny_clip(folder: Path, seed: int = 0, tokenizer: bool = True) -> Path:
    """CLIP: 12-d projection, text tower with the tiny tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    vocab = len(SPECIALS) + len(WORDS)
    model = CLIPModel(CLIPConfig(text_config={**TEXT, "vocab_size": vocab}, vision_config=VISION, projection_dim=12))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return _save(model, processor, folder, tiny_tokenizer() if tokenizer else None)


def save_tiny_siglip(folder: Path, seed: int = 0) -> Path:
    """SigLIP: 16-d attention-pooled image embedding, max-length padded text."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(seed)
    vocab = len(SPECIALS) + len(WORDS)
    model = SiglipModel(SiglipConfig(text_config={**TEXT, "vocab_size": vocab}, vision_config=VISION))
    return _save(model, SiglipImageProcessor(size={"height": 32, "width": 32}), folder, tiny_tokenizer())


def save_tiny_dinov2(folder: Path, seed: int = 0) -> Path:
    """DINOv2: 16-d CLS token, no text tower."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(seed)
    model = Dinov2Model(Dinov2Config(**VISION))
    processor = BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return _save(model, processor, folder)
