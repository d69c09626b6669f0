"""torchcodec: ffmpeg's decoders on the CPU ("torchcodec"), or the GPU's hardware video decoder
(NVDEC) straight into GPU memory ("nvdec").

Why torchcodec for NVDEC rather than PyNvVideoCodec: it is a wheel built against the torch evr
pins (0.17 for torch 2.14), it hands frames over as torch tensors on torch's own CUDA stream
(no copy between two CUDA runtimes before the models see them), it falls back to the CPU by
itself for a codec the chip cannot decode and says so (`cpu_fallback`), and the same code
decodes on the CPU, so the GPU path's logic is tested on machines without a GPU.

"nvdec" yields frames as uint8 (H, W, 3) CUDA tensors: the keyframe stage shrinks them there and
only the kept keyframes ever reach the host (indexer/pixels.py). torchcodec's decoder transforms
(its Resize) run only on CPU devices ("Transforms are only supported for CPU devices", in its
0.17 library), so NVDEC's frames are scaled to `max_short_side` by torch where they lie.
"torchcodec" yields numpy arrays like every CPU backend. A file NVDEC cannot decode (its codec,
its size) fails here, so that the next backend, on the CPU, opens it: torchcodec's own fallback
would decode on the CPU and upload every frame, slower than decord.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

from .base import BackendUnavailable, DecodeError, Frame, StreamInfo, presentation_times, scaled_size


class TorchCodecSource:
    name = "torchcodec"
    device = "cpu"
    tensors = False  # frames as torch tensors where they were decoded, not numpy arrays
    decoder_scales = True  # the decoder's own Resize transform (CPU devices only)

    def __init__(self, path: str, max_short_side: int):
        if self.device == "cuda" and not _nvidia_driver():
            raise BackendUnavailable("no CUDA device")  # said before importing torch (seconds, in each decode worker)
        try:
            import torch
            from torchcodec.decoders import VideoDecoder
            from torchcodec.transforms import Resize
        except (ImportError, OSError, RuntimeError) as exc:  # not installed, or no ffmpeg it can load
            raise BackendUnavailable(f"torchcodec cannot load ({exc})") from exc
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable("no CUDA device")
        kwargs = {"dimension_order": "NHWC", "device": self.device}
        if self.device == "cpu":
            kwargs["num_ffmpeg_threads"] = 0  # as many as ffmpeg likes, as the other backends do
        try:
            # The header alone (no scan) says the upright size, which the decoder then scales to.
            meta = VideoDecoder(path, seek_mode="approximate", **kwargs).metadata
            if not meta.width or not meta.height:
                raise DecodeError("no video frames")
            out_w, out_h = scaled_size(meta.width, meta.height, max_short_side)
            scaled = (out_w, out_h) != (meta.width, meta.height)
            transforms = [Resize((out_h, out_w))] if scaled and self.decoder_scales else None
            # "exact" scans the packets first: true frame counts and times, at demuxing cost only.
            decoder = VideoDecoder(path, seek_mode="exact", transforms=transforms, **kwargs)
        except DecodeError:
            raise
        except Exception as exc:  # torchcodec raises RuntimeError/ValueError for files it cannot open
            raise DecodeError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
        if self.device == "cuda" and decoder.cpu_fallback:
            raise DecodeError(f"NVDEC cannot decode this file ({meta.codec}, {meta.width}x{meta.height})")
        meta = decoder.metadata
        count = len(decoder)
        if count == 0:
            raise DecodeError("no video frames")
        fps = float(meta.average_fps or 0) or 25.0
        self._decoder, self._fps = decoder, fps
        self._scale_to = (out_w, out_h) if scaled and not self.decoder_scales else None
        self._start = float(meta.begin_stream_seconds or 0.0)
        duration = float(meta.duration_seconds or count / fps)
        self.info = StreamInfo(self.name, fps, count, duration, meta.width, meta.height)

    def frames(self) -> Iterator[Frame]:
        decoder = self._decoder

        def timed():
            for idx in range(len(decoder)):
                try:
                    # One frame per call, each its own tensor: a kept keyframe must not hold a
                    # whole decoded chunk in memory.
                    frame = decoder.get_frame_at(idx)
                except Exception as exc:  # torchcodec raises RuntimeError for a broken packet
                    why = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    if "no more frames" in why:
                        # Its scan counted a packet that gives no picture (an AVI's last frame
                        # without a time): the video ends here; a file that ends early is
                        # reported partial by the frame count, as with every backend.
                        return
                    raise DecodeError(f"frame {idx}: {why}") from exc
                yield frame.data, float(frame.pts_seconds) - self._start

        for idx, (data, ts) in enumerate(presentation_times(timed(), self._fps)):
            if self._scale_to is not None:
                data = resized(data, *self._scale_to)
            yield Frame(idx, ts, data if self.tensors else data.numpy())

    def close(self) -> None:
        self._decoder = None


class NvdecSource(TorchCodecSource):
    name = "nvdec"
    device = "cuda"
    tensors = True
    decoder_scales = False


def resized(frame, width: int, height: int):
    """A (H, W, 3) uint8 frame scaled on its own device, with antialiasing as ffmpeg's scaler
    shrinks (bilinear, every source pixel counted)."""
    import torch
    import torch.nn.functional as F

    x = frame.permute(2, 0, 1).unsqueeze(0).float()
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).contiguous()


@functools.cache
def _nvidia_driver() -> bool:
    """Whether an NVIDIA driver is loaded here (a cheap test: no CUDA device without one)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")
