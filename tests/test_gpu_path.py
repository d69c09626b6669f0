"""The GPU path's code on CPU tensors: frames decoded by torchcodec stay torch tensors (as NVDEC's
stay in GPU memory), are shrunk where they lie, and only kept keyframes become numpy arrays.
torchcodec decodes on the CPU too, so all of it runs here; only NVDEC itself needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evr.indexer.analyzers import features_off
from evr.indexer.decoders import BACKENDS, open_video
from evr.indexer.decoders.torchcodec_backend import TorchCodecSource
from evr.indexer.keyframes import KeyframeSelector
from evr.indexer.settings import DecodeSettings, IndexSettings, KeyframeSettings, ShotSettings
from evr.indexer.work import VideoWorker

pytestmark = pytest.mark.integration


class CpuTensorSource(TorchCodecSource):
    """torchcodec on the CPU, frames handed on as tensors: NVDEC's path, on this machine."""

    name = "nvdec"
    tensors = True


def frames(path, backend):
    src = open_video(str(path), [backend], 720)
    out = list(src.frames())
    src.close()
    return out


@pytest.fixture
def tensor_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, "nvdec", CpuTensorSource)
    return "nvdec"


@pytest.mark.parametrize(
    "clip_path",
    [
        "msrvtt/video7010.mp4",  # H.264 in MP4
        "opencv_samples/vtest.avi",  # MS-MPEG4 v3 in AVI
        "opencv_samples/tree.avi",
    ],
)  # Cinepak in AVI
def test_torchcodec_frames_equal_pyavs_at_the_same_times(videos, tensor_backend, clip_path):
    ours, theirs = frames(videos / clip_path, tensor_backend), frames(videos / clip_path, "pyav")
    assert len(ours) == len(theirs) > 50
    for a, b in zip(ours, theirs):
        assert isinstance(a.rgb, torch.Tensor) and a.rgb.dtype == torch.uint8
        assert abs(a.timestamp - b.timestamp) <= 1e-3
        diff = np.abs(a.rgb.numpy().astype(np.int16) - b.rgb.astype(np.int16))
        assert diff.mean() <= 0.5 and diff.max() <= 8, (clip_path, a.idx, diff.mean(), diff.max())


class CpuTensorScaledByTorch(CpuTensorSource):
    """As NVDEC's frames are scaled: by torch where they lie (torchcodec's decoder transforms run
    only on CPU devices)."""

    decoder_scales = False


@pytest.mark.parametrize("clip_path", ["scene_cuts/goldeneye-vfr-drop3.mp4", "opencv_samples/vtest.avi"])
def test_frames_scaled_where_they_lie_match_the_cpu_decoders_scaling(videos, monkeypatch, clip_path):
    """Shrunk to a short side of 240 (from 544 and 576): the size PyAV gives, and pixels as
    close to PyAV's as torchcodec's own scaler comes (mean difference about 1 of 255; edges
    differ more between any two scalers)."""
    monkeypatch.setitem(BACKENDS, "nvdec", CpuTensorScaledByTorch)
    for ours, theirs in zip(
        open_video(str(videos / clip_path), ["nvdec"], 240).frames(),
        open_video(str(videos / clip_path), ["pyav"], 240).frames(),
    ):
        assert tuple(ours.rgb.shape) == theirs.rgb.shape and theirs.rgb.shape[0] == 240
        diff = np.abs(ours.rgb.numpy().astype(np.int16) - theirs.rgb.astype(np.int16))
        assert diff.mean() <= 2.0, (clip_path, ours.idx, diff.mean())
        if ours.idx == 40:
            break


@pytest.mark.parametrize(
    "clip_path",
    [
        "msrvtt/video7018.mp4",  # 320x240, a cut in a dark room
        "scene_cuts/goldeneye-vfr-drop3.mp4",  # 1280x544, VFR: shrunk by 5
        "intel_samples/car-detection.mp4",
    ],
)  # 768x432: shrunk by 3
def test_keyframes_from_tensors_equal_the_cpu_paths(videos, tensor_backend, clip_path):
    """Same detector, same keyframes and shots: the tensor frames are shrunk on their device
    (indexer/pixels.py) and the small frames and thumbnails are the host path's."""

    def select(backend):
        src = open_video(str(videos / clip_path), [backend], 720)
        sel = KeyframeSelector(KeyframeSettings(), ShotSettings(detector="content"), src.info.fps)
        kept = [f for frame in src.frames() for f in sel.feed(frame)] + sel.finish()
        src.close()
        return [f.idx for f in kept], [s.start_frame for s in sel.shots(0.0)], kept

    ours, theirs = select(tensor_backend), select("pyav")
    assert ours[:2] == theirs[:2] and len(ours[0]) >= 5
    assert all(isinstance(f.rgb, torch.Tensor) for f in ours[2])  # kept as they were decoded


def test_an_index_run_on_tensor_frames_gives_the_cpu_paths_keyframes_and_vectors(videos, tensor_backend, clip):
    """The worker hands tensors to CLIP where they are and numpy copies to the thumbnails and
    analyzers: the result equals a run decoded by PyAV."""

    def run(backend):
        settings = IndexSettings(decode=DecodeSettings(backends=[backend]), features=features_off())
        result = VideoWorker(settings, clip).index_video(str(videos / "msrvtt/video7010.mp4"))
        assert result.error is None, result.error
        return result

    ours, theirs = run(tensor_backend), run("pyav")
    assert ours.info.decoder == "nvdec" and theirs.info.decoder == "pyav"
    assert [k.frame_idx for k in ours.keyframes] == [k.frame_idx for k in theirs.keyframes]
    assert [k.shot for k in ours.keyframes] == [k.shot for k in theirs.keyframes]
    for a, b in zip(ours.keyframes, theirs.keyframes):
        assert np.allclose(a.vector, b.vector, atol=1e-5)
        assert a.jpeg == b.jpeg


def test_nvdec_first_in_the_order_costs_a_cpu_machines_decode_workers_nothing(videos):
    """`nvdec` leads the default order: where no NVIDIA driver is loaded it steps aside before
    torch is imported (seconds and hundreds of MB in each decode worker process)."""
    import subprocess
    import sys

    from evr.indexer.decoders.torchcodec_backend import _nvidia_driver

    code = (
        "import sys; from evr.indexer.decoders import open_video; "
        f"s = open_video({str(videos / 'msrvtt/video7010.mp4')!r}, ['nvdec', 'decord'], 720); "
        "print(s.info.backend, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if _nvidia_driver():  # a GPU machine: NVDEC decodes (or the codec falls to decord)
        assert out[0] in ("nvdec", "decord")
    else:
        assert out == ["decord", "False"]
