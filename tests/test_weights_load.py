"""Trained weights load without drawing random ones first (indexer/encoders/clip.py,
`skip_random_fills`): the model made so equals the one made the old way once the weights are in,
on a real frame and a text; and the skipping is this thread's alone, so a random-weight model
made at the same time in another thread is the very one it would be alone."""

from __future__ import annotations

import threading

import numpy as np
import open_clip
import pytest
import torch

from evr.indexer.decoders import open_video
from evr.indexer.encoders import ClipEncoder
from evr.indexer.encoders.clip import skip_random_fills
from evr.indexer.settings import ClipSettings

pytestmark = pytest.mark.integration

MODEL = "ViT-S-32-alt"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A local weights file: a model with its own (seeded) random values, saved."""
    path = tmp_path_factory.mktemp("weights") / f"{MODEL}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)  # other values than the random-weight encoder's seed 0
        model = open_clip.create_model(MODEL, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def frame(videos) -> np.ndarray:
    source = open_video(str(videos / "msrvtt/video7010.mp4"), ["pyav"], 0)
    try:
        return next(iter(source.frames())).rgb
    finally:
        source.close()


def old_way(weights) -> torch.nn.Module:
    """Random values drawn for every parameter, then the checkpoint loaded over them."""
    model, _, _ = open_clip.create_model_and_transforms(MODEL, pretrained=str(weights))
    return model.eval()


def test_a_model_made_for_trained_weights_equals_one_made_the_old_way(weights, frame):
    fast = ClipEncoder(ClipSettings(MODEL, str(weights), "cpu"))
    slow = old_way(weights)
    for (name, a), (_, b) in zip(fast._build()[0].state_dict().items(), slow.state_dict().items()):
        assert torch.equal(a, b), name  # parameters and buffers (the causal mask too) alike
    image = fast.encode_images([frame])[0]
    text = fast.encode_texts(["a person on a street"])[0]
    with torch.inference_mode():
        batch = open_clip.create_model_and_transforms(MODEL)[2]
        from PIL import Image

        want_image = torch.nn.functional.normalize(slow.encode_image(batch(Image.fromarray(frame))[None]), dim=-1)[0]
        tokens = open_clip.get_tokenizer(MODEL)(["a person on a street"])
        want_text = torch.nn.functional.normalize(slow.encode_text(tokens), dim=-1)[0]
    assert np.allclose(text, want_text.numpy(), atol=1e-6)
    assert float(image @ want_image.numpy()) > 0.999  # the encoder's own torch preprocessing: near, not equal


def test_skipping_random_fills_is_this_threads_alone():
    """A random-weight model made in another thread while this one skips its fills is the same
    as one made alone (seeded): the mode is per thread, torch.nn.init is not patched."""

    def random_model() -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            return open_clip.create_model(MODEL, pretrained=None).state_dict()

    alone = random_model()
    made, started, done = {}, threading.Event(), threading.Event()

    def other_thread() -> None:
        started.wait()
        made["model"] = random_model()
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with skip_random_fills():
        started.set()
        skipped = torch.empty(1000).normal_()  # here: left as it is, not drawn
        empty_before = skipped.clone()
        while not done.wait(0.01):
            torch.nn.init.normal_(skipped)  # keeps skipping while the other thread draws
        assert torch.equal(skipped.nan_to_num(), empty_before.nan_to_num())
    thread.join()
    for name, value in alone.items():
        assert torch.equal(value, made["model"][name]), name
    drawn = torch.zeros(1000).normal_()  # outside the block: drawn as ever
    assert drawn.std() > 0.5
