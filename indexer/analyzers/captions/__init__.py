"""Captions: one sentence per keyframe from an image-to-text model run through transformers
(`AutoProcessor` + `AutoModelForImageTextToText`), on whole batches of keyframes, on the GPU when
there is one (fp16). Off by default ([captions] enabled): it is the slowest analyzer on a CPU.

The default model is BLIP base (Salesforce/blip-image-captioning-base): BSD-3-Clause, 247 M
parameters (about 0.5 GB in fp16), native in transformers (no code from the model's repository
runs), and it captions a batch of keyframes in one generate call. Florence-2 writes richer
captions but needs `trust_remote_code` (code from the hub, run in this process) on many
transformers versions; BLIP large, GIT or a small VLM can be named instead (`model`), any model
that `AutoModelForImageTextToText` loads. Its weights download on first use (or a folder is
named); where they are neither cached nor downloadable the analyzer is off for the run, said once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from evr.storage.rules import between, one_of, rule, text

from ...encoders import resolve_device
from ...settings import DEVICES
from ..base import FrameAnalyzer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionSettings:
    """[captions]"""

    enabled: bool = False
    # A Hugging Face name (downloaded on first use) or a folder: any image-to-text model
    # AutoModelForImageTextToText loads.
    model: str = rule(text("a model name or folder"), default="Salesforce/blip-image-captioning-base")
    prompt: str = ""  # text the caption starts from (BLIP: "a picture of"); "" = none
    max_tokens: int = rule(between(4, 200), default=30)  # a caption's length at most, in tokens
    device: str = rule(one_of(DEVICES), default="auto")
    batch_size: int = rule(between(1, 256), default=16)  # keyframes per generate call


class CaptionAnalyzer(FrameAnalyzer):
    name = "captions"
    settings_class = CaptionSettings
    settings: CaptionSettings
    reads_thumbnails = True  # a caption of the 320 px thumbnail (BLIP reads 384 px): `evr analyze` needs no decoding

    def __init__(self, settings: CaptionSettings):
        super().__init__(settings)
        self._model = None
        self._processor = None
        self._off: str | None = None  # why it cannot run in this process
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    @property
    def signature(self) -> str:
        s = self.settings
        if self._model is None and self._off is None:
            self.load()  # a download: where none can be made, the analyzer is off for the run
        return "" if self._off else f"{s.model}:{s.max_tokens}" + (f":{s.prompt}" if s.prompt else "")

    def load(self) -> None:
        if self._model is not None or self._off is not None:
            return
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr holds evr's own progress
        s = self.settings
        try:
            processor = AutoProcessor.from_pretrained(s.model)
            dtype = torch.float16 if self.device == "cuda" else torch.float32
            model = AutoModelForImageTextToText.from_pretrained(s.model, dtype=dtype)
        except Exception as exc:  # no network, no cache, not a model folder: the run goes on without captions
            self._off = (
                f"captions are off for this run: {s.model} could not be loaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}); run once with network access so it downloads, name a "
                "folder in captions.model, or set captions.enabled = false"
            )
            log.warning("%s", self._off)
            return
        self._processor, self._model = processor, model.eval().to(self.device)

    def close(self) -> None:
        self._model, self._processor, self._off = None, None, None

    def analyze(self, images: list[np.ndarray]) -> list[str | None]:
        self.load()
        if self._model is None:
            return [None] * len(images)
        import torch

        s, out = self.settings, []
        for start in range(0, len(images), s.batch_size):
            batch = [np.ascontiguousarray(im[..., :3]) for im in images[start : start + s.batch_size]]
            asked = {"text": [s.prompt] * len(batch)} if s.prompt else {}
            inputs = self._processor(images=batch, return_tensors="pt", **asked).to(self.device)
            if self.device == "cuda":
                inputs["pixel_values"] = inputs["pixel_values"].half()
            with torch.inference_mode():
                tokens = self._model.generate(**inputs, max_new_tokens=s.max_tokens, do_sample=False)
            out += [" ".join(said.split()) for said in self._processor.batch_decode(tokens, skip_special_tokens=True)]
        return out
