"""Which text encoders share which image space: the table evr trusts, and nothing else.

An index is defined by its image encoder (clip.model, clip.pretrained). A text query may be
encoded by that model's own text tower, or by a text encoder that was trained to land in the same
space (distilled from the English tower, or trained against the frozen image tower). Vectors of
any other pairing compare as noise, so evr refuses one it does not know to be aligned.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoderSpec:
    loader: str  # "mclip" | "sentence-transformers" | "open_clip" (one file each in this package)
    image_space: tuple[str, str]  # the (clip.model, clip.pretrained) whose image vectors it matches
    how: str  # how it was aligned, for the README table and `evr doctor`


# name (a Hugging Face repository, or open_clip "model/tag") -> its spec. The first entry for an
# image space is what query.text_encoder = "auto" takes when its weights are present.
TEXT_ENCODERS: dict[str, TextEncoderSpec] = {
    "M-CLIP/XLM-Roberta-Large-Vit-L-14": TextEncoderSpec(
        "mclip", ("ViT-L-14", "openai"), "XLM-R large distilled from the ViT-L/14 text tower (M-CLIP)"
    ),
    "M-CLIP/LABSE-Vit-L-14": TextEncoderSpec(
        "mclip", ("ViT-L-14", "openai"), "LaBSE distilled from the ViT-L/14 text tower (M-CLIP)"
    ),
    "sentence-transformers/clip-ViT-B-32-multilingual-v1": TextEncoderSpec(
        "sentence-transformers",
        ("ViT-B-32", "openai"),
        "multilingual DistilBERT distilled from the ViT-B/32 text tower (the space of AIC's clip-features-32)",
    ),
    "M-CLIP/XLM-Roberta-Large-Vit-B-32": TextEncoderSpec(
        "mclip", ("ViT-B-32", "openai"), "XLM-R large distilled from the ViT-B/32 text tower (M-CLIP)"
    ),
    "xlm-roberta-large-ViT-H-14/frozen_laion5b_s13b_b90k": TextEncoderSpec(
        "open_clip",
        ("ViT-H-14", "laion2b_s32b_b79k"),
        "XLM-R large trained against the frozen ViT-H-14 laion2b image tower (open_clip)",
    ),
}

# open_clip models whose own text tower reads many languages: with one of these as clip.model, a
# Vietnamese query needs no other encoder.
MULTILINGUAL_CLIP_MODELS = (
    "xlm-roberta-base-ViT-B-32",
    "xlm-roberta-large-ViT-H-14",
    "nllb-clip-base",
    "nllb-clip-large",
    "nllb-clip-base-siglip",
    "nllb-clip-large-siglip",
    "ViT-B-16-SigLIP-i18n-256",
    "ViT-SO400M-16-SigLIP-i18n-256",
    "mt5-base-ViT-B-32",
    "mt5-xl-ViT-H-14",
    # SigLIP 2: Gemma's tokenizer, trained on multilingual WebLI
    "ViT-B-16-SigLIP2",
    "ViT-B-16-SigLIP2-256",
    "ViT-B-16-SigLIP2-384",
    "ViT-B-16-SigLIP2-512",
    "ViT-B-32-SigLIP2-256",
    "ViT-L-16-SigLIP2-256",
    "ViT-L-16-SigLIP2-384",
    "ViT-L-16-SigLIP2-512",
    "ViT-SO400M-14-SigLIP2",
    "ViT-SO400M-14-SigLIP2-378",
    "ViT-SO400M-16-SigLIP2-256",
    "ViT-SO400M-16-SigLIP2-384",
    "ViT-SO400M-16-SigLIP2-512",
    "ViT-gopt-16-SigLIP2-256",
    "ViT-gopt-16-SigLIP2-384",
)


def aligned_with(model: str, pretrained: str) -> list[str]:
    """The text encoders that share this image space, in the table's order."""
    return [name for name, spec in TEXT_ENCODERS.items() if spec.image_space == (model, pretrained)]
