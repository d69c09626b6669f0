"""A tiny BLIP captioner with random weights, built offline from a config: the captions
analyzer's real loading and batched generation code runs on it. Its output bias is set so that
every caption is the word "street" over and over: captions are stored, searched and fused, which
is all a test can ask of a model without trained weights."""

from __future__ import annotations

from pathlib import Path

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "man", "street", "car", "dog", "on", "the"]


def build_tiny_captioner(folder: Path) -> Path:
    import torch
    from transformers import (
        BertTokenizerFast,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 64, "width": 64}),
        tokenizer=BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}),
    )
    layers = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}
    text = {**layers, "vocab_size": len(WORDS), "max_position_embeddings": 64}
    text.update(pad_token_id=0, bos_token_id=2, sep_token_id=3, eos_token_id=3)
    vision = {**layers, "image_size": 64, "patch_size": 16}
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32))
    with torch.no_grad():
        bias = model.text_decoder.cls.predictions.bias
        bias.fill_(-50.0)
        bias[WORDS.index("street")] = 50.0  # greedy decoding says "street" every time
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
