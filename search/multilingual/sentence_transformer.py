"""Text encoders in the sentence-transformers format (modules.json: transformer, pooling, dense),
such as sentence-transformers/clip-ViT-B-32-multilingual-v1, loaded by that library."""

from __future__ import annotations

import numpy as np

from .weights import LocalTextEncoder


class SentenceTransformerEncoder(LocalTextEncoder):
    def _build(self):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_folder()), device=self.device, local_files_only=True)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = self.load().encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)
