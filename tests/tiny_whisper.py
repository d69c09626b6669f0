"""A tiny Whisper with random weights in faster-whisper's format (CTranslate2), built offline:
the faster-whisper backend's real loading and transcription code runs on it. Its words are noise;
only trained weights transcribe."""

from __future__ import annotations

from pathlib import Path


def build_tiny_whisper(folder: Path) -> Path:
    """Write the model to `folder` (a Hugging Face model in `folder/hf`, converted into
    `folder/model`) and return the converted model's folder."""
    import ctranslate2
    import torch
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration

    # Whisper's special tokens (faster_whisper.tokenizer looks them up by name) over the 256
    # byte-level characters: a vocabulary of 1,865 where the real one has 51,865.
    languages = [f"<|{code}|>" for code in _LANGUAGE_CODES]
    tasks = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *languages,
        *tasks,
        *[f"<|{i * 0.02:.2f}|>" for i in range(1501)],
    ]
    tokenizer = Tokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}, merges=[])
    )
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(specials)
    hf = folder / "hf"
    # The converter reads the language tokens from the tokenizer's additional special tokens.
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, additional_special_tokens=languages + tasks).save_pretrained(hf)
    eot, sot = tokenizer.token_to_id("<|endoftext|>"), tokenizer.token_to_id("<|startoftranscript|>")
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=tokenizer.get_vocab_size(),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
    )
    WhisperForConditionalGeneration(config).save_pretrained(hf)
    model = folder / "model"
    ctranslate2.converters.TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(model))
    return model
