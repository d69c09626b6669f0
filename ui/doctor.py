"""`evr doctor`: what this machine offers evr (device, libraries, weights, index)."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil

from .config import AppConfig


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def diagnose(config: AppConfig) -> dict:
    import faiss
    import torch

    from evr.indexer.encoders import resolve_device
    from evr.indexer.encoders.clip import weights_status
    from evr.storage import StoreError
    from evr.storage.vectors import gpu_available

    clip = config.index.clip
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        device = resolve_device(clip.device)
    except Exception as exc:  # e.g. device = "cuda" without a GPU
        device = f"unusable: {exc}"
    present, weights = weights_status(clip)
    decoders = {
        name: _version(dist)
        for name, dist in (
            ("decord", "decord"),
            ("pyav", "av"),
            ("opencv", "opencv-python-headless"),
            ("torchcodec", "torchcodec"),
        )
    }
    nvdec = (
        "on the GPU" if gpu and decoders["torchcodec"] else "unused (no CUDA device)" if not gpu else "needs torchcodec"
    )
    from evr.indexer.shots import chosen

    shots, shots_on = (
        chosen(config.index.shots, clip.device) if not device.startswith("unusable") else ("content", "cpu")
    )
    try:
        with config.open_engine() as engine:
            s = engine.archive.stats()
        index = (
            f"{s['videos']} videos, {s['keyframes']} keyframes, {s['vectors']} vectors ({s['vector_index']}), "
            f"{'consistent' if s['consistent'] else 'INCONSISTENT (run evr index to repair)'}, "
            f"model {s['model']} ({s['pretrained']})"
        )
        stored = s["models"]
    except StoreError as exc:
        index, stored = str(exc), {}
    return {
        "python": platform.python_version(),
        "torch": f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})",
        "gpu": gpu or "none visible",
        "device": f"{device} (clip.device = {clip.device})",
        "faiss": f"{faiss.__version__}, {'GPU' if gpu_available() else 'CPU'} search",
        "decoders": ", ".join(f"{n} {v}" if v else f"{n} missing" for n, v in decoders.items())
        + f"; nvdec {nvdec} (order: {', '.join(config.index.decode.backends)})",
        "shots": f"{shots} on {shots_on} (shots.detector = {config.index.shots.detector})",
        "ffmpeg": shutil.which("ffmpeg") or "missing (only needed by the benchmark)",
        "clip_model": f"{clip.model} / {clip.pretrained}",
        "clip_weights": f"{'present' if present else 'MISSING'}: {weights}",
        "config": str(config.source) if config.source else "built-in defaults (no config.toml found)",
        "data_dir": str(config.data_dir),
        "index": index,
        "models": _models(config, stored),
        **_languages(config),
        "speech_backends": _speech(config),
    }


def _models(config: AppConfig, stored: dict) -> list[str]:
    """Each image-text model: configured or only in the index, its weights, its vector index."""
    from evr.indexer.encoders.clip import weights_status

    lines = []
    for name in dict.fromkeys([*config.index.image_models, *stored]):
        settings, index = config.index.image_models.get(name), stored.get(name)
        if settings is None:
            lines.append(
                f"{name}: {index['model']} / {index['pretrained']}, not configured: "
                f"{index['vectors']:,} vectors ({index['vector_index']}) searches skip"
            )
            continue
        present, weights = weights_status(settings)
        held = f"{index['vectors']:,} vectors ({index['vector_index']})" if index else "no vectors in the index yet"
        wrong = mismatch(name, settings, index)
        lines.append(
            f"{name}: {settings.model} / {settings.pretrained}, weights {'present' if present else 'MISSING'}"
            f" ({weights}); {held}" + (f"; MISMATCH: {wrong}" if wrong else "")
        )
    return lines


def mismatch(name: str, settings, index: dict | None) -> str | None:
    """What to say when the index holds vectors of another model under a configured name."""
    if (
        settings is None
        or index is None
        or not index["vectors"]
        or (settings.model, settings.pretrained) == (index["model"], index["pretrained"])
    ):
        return None
    fix = (
        "set [clip] back, or index into another data folder"
        if name == "clip"
        else f"set it back, give the new model another name, or `evr models --drop {name}`"
    )
    return (
        f"the config says {settings.model} / {settings.pretrained}, but the index holds {index['vectors']:,} "
        f"vectors of {index['model']} / {index['pretrained']} under this name: searches and `evr index` refuse "
        f"it until the two agree ({fix})"
    )


def _speech(config: AppConfig) -> list[str]:
    """What each speech backend could do here, looked up without a download."""
    from evr.indexer.analyzers.speech import PocketsphinxBackend, WhisperBackend

    s = config.index.feature("speech")
    folder, why = WhisperBackend.locate(s, download=False)
    sphinx_why = PocketsphinxBackend.unavailable(s)
    return [
        f"faster-whisper: model {s.model} " + (f"present ({folder})" if folder else f"MISSING: {why}"),
        "pocketsphinx: " + (sphinx_why or "English (its bundled en-us model)"),
        f"speech.enabled = {str(s.enabled).lower()}, backend = {s.backend}, language = {s.language}",
    ]


def _languages(config: AppConfig) -> dict:
    """Text encoders and translator for queries in other languages, and the OCR backends."""
    from evr.indexer.analyzers.ocr import BACKENDS
    from evr.indexer.encoders import ClipEncoder
    from evr.search import QueryError
    from evr.search.multilingual import TEXT_ENCODERS, TextRouter

    clip, query = config.index.clip, config.query
    router = TextRouter(query, ClipEncoder(clip))
    encoders = []
    for name, spec in TEXT_ENCODERS.items():
        present, where = router.status(name)
        fits = " (fits this index)" if spec.image_space == (clip.model, clip.pretrained) else ""
        encoders.append(
            f"{name} for {'/'.join(spec.image_space)}{fits}: {'present, ' + where if present else 'MISSING: ' + where}"
        )
    if router.native_multilingual:
        route = f"every language -> {router.native_name} (its own text tower is multilingual)"
    else:
        try:
            name = router.encoder_name()
        except QueryError as exc:
            name, route = None, f"REFUSED: {exc}"
        else:
            steps = []  # (what, its files are here), in the order a query tries them
            if query.translate:
                steps.append((f"translate with {query.translate}", router.translator_status()[0]))
            if name:
                steps.append((name, router.status(name)[0]))
            usable = [what for what, present in steps if present]
            route = f"en -> {router.native_name}; other languages -> " + (
                usable[0]
                if usable
                else f"{router.native_name}, which reads only English (nothing else "
                f"is usable: {', '.join(w for w, _ in steps) or 'no encoder known for this index'})"
            )
    translator = 'off (query.translate = "")'
    if query.translate:
        present, where = router.translator_status()
        translator = f"{query.translate}: {'present, ' + where if present else 'MISSING: ' + where}"
    ocr = []
    for name, backend in BACKENDS.items():
        langs, folder, missing = backend.plan(config.index.feature("ocr"))
        ocr.append(
            f"{name}: " + (f"reads {langs} ({folder})" if langs else "cannot run") + (f"; {missing}" if missing else "")
        )
    return {
        "query_languages": f"{', '.join(query.languages)} (detected by lingua; --lang overrides)",
        "query_routing": route,
        "text_encoders": encoders,
        "translator": translator,
        "ocr_backends": ocr + [f"ocr.backend = {config.index.feature('ocr').backend}"],
    }
