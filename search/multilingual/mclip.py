"""M-CLIP text encoders (Carlsson et al., 2022): a multilingual transformer, mean-pooled, and one
linear layer into a CLIP model's text space.

The `multilingual-clip` package is not used: its model class downloads the base transformer's full
weights (xlm-roberta-large, 2.2 GB) from the hub on every load, only to overwrite them with the
checkpoint's. Here the base's config.json alone builds the network, and the checkpoint fills it.
"""

from __future__ import annotations

import json

import numpy as np

from evr.indexer.encoders import ModelUnavailableError

from .weights import LocalTextEncoder, load_state_dict, weights_file


def mclip_config(folder) -> dict:
    """An M-CLIP checkpoint's config: modelBase (the base transformer), transformerDimensions, numDims."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not config.get("modelBase") or "numDims" not in config:
        raise ModelUnavailableError(f"{folder}/config.json is not an M-CLIP config (no modelBase, numDims)")
    return config


def base_config(base: str, name: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base, local_files_only=True)
    except OSError:
        raise ModelUnavailableError(
            f"{name} is built on {base}, whose config.json is not downloaded: run "
            f"`hf download {base} config.json` once with network access"
        ) from None


class MClipEncoder(LocalTextEncoder):
    def _build(self):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        folder = self.model_folder()
        config = mclip_config(folder)
        base = config["modelBase"]
        model = torch.nn.Module()
        model.transformer = AutoModel.from_config(base_config(base, self.name))
        model.LinearTransformation = torch.nn.Linear(config["transformerDimensions"], config["numDims"])
        state = load_state_dict(weights_file(folder))
        missing, unexpected = model.load_state_dict(state, strict=False)
        # Older checkpoints also hold buffers that newer transformers compute (position_ids).
        unexpected = [k for k in unexpected if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelUnavailableError(
                f"{folder} does not fit {base}: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        model.eval().to(self.device)
        # The tokenizer reads config.json too, and transformers warns that "M-CLIP" is no model
        # type it knows: true, and no concern of the user's.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            return model, AutoTokenizer.from_pretrained(str(folder))
        finally:
            hf_logging.set_verbosity(verbosity)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        model, tokenizer = self.load()
        tokens = tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = model.transformer(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])[0]
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
            out = torch.nn.functional.normalize(model.LinearTransformation(pooled).float(), dim=-1)
        return out.cpu().numpy().astype(np.float32)
