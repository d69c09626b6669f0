"""Query translation to English (a transformers sequence-to-sequence model such as MarianMT's
Helsinki-NLP/opus-mt-vi-en), for an index whose only text tower is English."""

from __future__ import annotations

from pathlib import Path

from .weights import LazyModel, model_folder

MAX_NEW_TOKENS = 96  # a query is a sentence or two


class Translator(LazyModel):
    def __init__(self, model: str, device: str):
        super().__init__()
        self.model = model  # a Hugging Face repository (from the cache) or a local folder
        self.device = device

    @property
    def name(self) -> str:
        return Path(self.model).name if Path(self.model).expanduser().is_dir() else self.model

    def folder(self) -> Path:
        local = Path(self.model).expanduser()
        return model_folder(self.model, str(local) if local.is_dir() else "", "query.translate")

    def _build(self):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        folder = self.folder()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return AutoModelForSeq2SeqLM.from_pretrained(str(folder)).eval().to(self.device), tokenizer

    def translate(self, text: str) -> str:
        import torch

        model, tokenizer = self.load()
        inputs = tokenizer([text], return_tensors="pt", truncation=True).to(self.device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, num_beams=4)
        return tokenizer.decode(out[0], skip_special_tokens=True).strip()
