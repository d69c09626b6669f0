"""Vietnamese (and other) text queries: language routing, the alignment table, the encoders.

The encoders are real loaders run on tiny models built here (a word-level tokenizer and a
2-layer transformer with random weights, saved to a temp folder): M-CLIP's format, the
sentence-transformers format and a MarianMT translator. No ranking is asserted: what is checked
is which encoder read the query and that the search used exactly its vector.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from evr.indexer.encoders import ClipEncoder
from evr.indexer.settings import ClipSettings
from evr.search import Query, QueryError, QuerySettings, SearchEngine
from evr.search.multilingual import MULTILINGUAL_CLIP_MODELS, TEXT_ENCODERS, TextRouter, table
from evr.search.multilingual.mclip import MClipEncoder
from evr.search.multilingual.sentence_transformer import SentenceTransformerEncoder
from evr.search.multilingual.translate import Translator
from evr.storage import Store

from .conftest import TEST_ENV, evr, run, vector_of

pytestmark = pytest.mark.unit

DIM = 256  # the test CLIP's (ViT-S-32-alt) embedding size
SPACE = (TEST_ENV["EVR_CLIP_MODEL"], TEST_ENV["EVR_CLIP_PRETRAINED"])
WORDS = (
    "người đàn ông đi xe đạp nguoi dan ong di xe dap lũ lụt ở miền trung a man riding bicycle flood in the street"
).split()
VI_MARKS, VI_PLAIN, EN = "người đàn ông đi xe đạp", "nguoi dan ong di xe dap", "a man riding a bicycle"


def tiny_tokenizer(folder):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "</s>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="</s>",
    )
    fast.save_pretrained(str(folder))
    return fast


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """{"mclip": folder, "st": folder, "marian": folder}: tiny random-weight models in real formats."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, BertConfig, MarianConfig, MarianMTModel, XLMRobertaConfig

    root = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    # M-CLIP: config.json names the base transformer, whose config alone builds the network.
    base, mclip = root / "base", root / "mclip"
    tokenizer = tiny_tokenizer(mclip)
    XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    ).save_pretrained(str(base))
    net = torch.nn.Module()
    net.transformer = AutoModel.from_config(XLMRobertaConfig.from_pretrained(str(base)))
    net.LinearTransformation = torch.nn.Linear(32, DIM)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(mclip / "model.safetensors"))
    (mclip / "config.json").write_text(
        json.dumps({"model_type": "M-CLIP", "modelBase": str(base), "transformerDimensions": 32, "numDims": DIM})
    )
    # sentence-transformers: transformer, mean pooling, dense into the CLIP space.
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    bert = root / "bert"
    tiny_tokenizer(bert)
    AutoModel.from_config(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(str(bert))
    transformer = Transformer(str(bert))
    st = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Dense(32, DIM, activation_function=None)])
    st.save(str(root / "st"))
    # A MarianMT translator.
    marian = root / "marian"
    tiny_tokenizer(marian)
    MarianMTModel(
        MarianConfig(
            vocab_size=len(tokenizer),
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=32,
            decoder_ffn_dim=32,
            max_position_embeddings=64,
            pad_token_id=0,
            eos_token_id=4,
            decoder_start_token_id=0,
        )
    ).save_pretrained(str(marian))
    return {"mclip": mclip, "st": root / "st", "marian": marian}


@pytest.fixture
def tiny_table(monkeypatch):
    """Two test encoders paired with the test CLIP's image space (random weights: aligned with
    nothing in truth; the table is what evr trusts)."""
    monkeypatch.setitem(TEXT_ENCODERS, "test/tiny-mclip", table.TextEncoderSpec("mclip", SPACE, "test"))
    monkeypatch.setitem(TEXT_ENCODERS, "test/tiny-st", table.TextEncoderSpec("sentence-transformers", SPACE, "test"))


def clip() -> ClipEncoder:
    return ClipEncoder(ClipSettings(*SPACE, device="cpu"))


def test_the_table_names_real_image_spaces():
    import open_clip

    for name, spec in TEXT_ENCODERS.items():
        assert spec.loader in ("mclip", "sentence-transformers", "open_clip"), name
        assert open_clip.get_pretrained_cfg(*spec.image_space), f"{name}: {spec.image_space} is not an open_clip tag"
        if spec.loader == "open_clip":
            assert open_clip.get_pretrained_cfg(*name.split("/")), name
    assert set(MULTILINGUAL_CLIP_MODELS) <= set(open_clip.list_models())
    assert table.aligned_with("ViT-L-14", "openai")[0] == "M-CLIP/XLM-Roberta-Large-Vit-L-14"
    assert "sentence-transformers/clip-ViT-B-32-multilingual-v1" in table.aligned_with("ViT-B-32", "openai")
    assert table.aligned_with("ViT-H-14", "laion2b_s32b_b79k") == [
        "xlm-roberta-large-ViT-H-14/frozen_laion5b_s13b_b90k"
    ]
    assert table.aligned_with("ViT-L-14", "laion2b_s32b_b82k") == []


@pytest.mark.parametrize("text, lang", [(VI_MARKS, "vi"), (VI_PLAIN, "vi"), (EN, "en"), ("2024", None)])
def test_language_detection(text, lang):
    assert TextRouter(QuerySettings(), clip()).language_of(text) == lang


def test_vietnamese_goes_to_the_multilingual_encoder_english_to_clip(tiny_models, tiny_table):
    encoder = clip()
    router = TextRouter(
        QuerySettings(text_encoder="test/tiny-mclip", text_encoder_path=str(tiny_models["mclip"])), encoder
    )
    direct = MClipEncoder("test/tiny-mclip", str(tiny_models["mclip"]), "cpu")
    for text in (VI_MARKS, VI_PLAIN):
        got = router.encode(text)
        assert (got.encoder, got.language, got.text) == ("test/tiny-mclip", "vi", text)
        assert got.vector.shape == (DIM,) and abs(np.linalg.norm(got.vector) - 1) < 1e-5
        np.testing.assert_allclose(got.vector, direct.encode([text])[0], atol=1e-6)
    english = router.encode(EN)
    assert (english.encoder, english.language) == (f"clip:{SPACE[0]}/{SPACE[1]}", "en")
    np.testing.assert_allclose(english.vector, encoder.encode_texts([EN])[0], atol=1e-6)
    # --lang overrides detection, both ways.
    assert router.encode(EN, "vi").encoder == "test/tiny-mclip"
    assert router.encode(VI_MARKS, "en").encoder.startswith("clip:")
    assert not router.fallback("vi")


def test_sentence_transformers_format(tiny_models, tiny_table):
    from sentence_transformers import SentenceTransformer

    router = TextRouter(QuerySettings(text_encoder="test/tiny-st", text_encoder_path=str(tiny_models["st"])), clip())
    got = router.encode(VI_MARKS)
    assert got.encoder == "test/tiny-st"
    expected = SentenceTransformer(str(tiny_models["st"]), device="cpu").encode([VI_MARKS])[0]
    np.testing.assert_allclose(got.vector, expected / np.linalg.norm(expected), atol=1e-5)
    assert isinstance(router._encoder("test/tiny-st"), SentenceTransformerEncoder)


def test_translation_first_then_the_english_tower(tiny_models, tiny_table):
    encoder = clip()
    router = TextRouter(
        QuerySettings(
            translate=str(tiny_models["marian"]),
            text_encoder="test/tiny-mclip",
            text_encoder_path=str(tiny_models["mclip"]),
        ),
        encoder,
    )
    got = router.encode(VI_MARKS)
    translated = Translator(str(tiny_models["marian"]), "cpu").translate(VI_MARKS)
    assert got.encoder == f"marian>clip:{SPACE[0]}/{SPACE[1]}" and got.text == translated
    np.testing.assert_allclose(got.vector, encoder.encode_texts([translated])[0], atol=1e-6)
    assert router.encode(EN).text == EN  # English is never translated


def test_missing_weights_are_said_once_and_the_english_tower_answers(tiny_models, tiny_table, caplog, tmp_path):
    """Neither the translator nor the encoder is in the (empty) Hugging Face cache."""
    encoder = clip()
    router = TextRouter(QuerySettings(text_encoder="test/tiny-mclip", translate="Helsinki-NLP/opus-mt-vi-en"), encoder)
    with caplog.at_level(logging.WARNING):
        first, second = router.encode(VI_MARKS), router.encode(VI_PLAIN)
    assert first.encoder == second.encoder == f"clip:{SPACE[0]}/{SPACE[1]}"
    np.testing.assert_allclose(first.vector, encoder.encode_texts([VI_MARKS])[0], atol=1e-6)
    warnings = [r.getMessage() for r in caplog.records if r.name == "evr.search.multilingual.router"]
    assert len(warnings) == 1, warnings
    for part in (
        "'vi' queries",
        "English-only",
        "hf download test/tiny-mclip",
        "hf download Helsinki-NLP/opus-mt-vi-en",
    ):
        assert part in warnings[0]
    assert router.fallback("vi") == warnings[0] and router.fallback("en") is None
    assert router.status("test/tiny-mclip")[0] is False


def test_search_uses_the_chosen_encoders_vector(indexed, tiny_models, tiny_table, monkeypatch, capsys):
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER", "test/tiny-mclip")
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER_PATH", str(tiny_models["mclip"]))
    code, hits = evr("--data-dir", indexed, "search", VI_PLAIN, "--k", "5", "--json", capsys=capsys)
    assert code == 0 and len(hits) == 5
    assert {(h["encoder"], h["query_language"]) for h in hits} == {("test/tiny-mclip", "vi")}
    query = MClipEncoder("test/tiny-mclip", str(tiny_models["mclip"]), "cpu").encode([VI_PLAIN])[0]
    from evr.storage import Store

    with Store(indexed) as store:
        for h in hits:  # each score is the cosine with the M-CLIP vector (stored vectors are float16)
            assert abs(float(vector_of(store, h["keyframe_id"]) @ query) - h["score"]) < 2e-3
    code, hits = evr("--data-dir", indexed, "search", EN, "--k", "3", "--json", capsys=capsys)
    assert {(h["encoder"], h["query_language"]) for h in hits} == {(f"clip:{SPACE[0]}/{SPACE[1]}", "en")}
    code, hits = evr("--data-dir", indexed, "search", "--like", "1", "--k", "3", "--json", capsys=capsys)
    assert {h["encoder"] for h in hits} == {None}  # no text was read
    # Temporal: each event is routed by its own language.
    code, hits = evr("--data-dir", indexed, "search", VI_MARKS, "--then", EN, "--within", "30", "--json", capsys=capsys)
    assert code == 0 and hits
    assert {(h["encoder"], h["then"]["encoder"], h["then"]["query_language"]) for h in hits} == {
        ("test/tiny-mclip", f"clip:{SPACE[0]}/{SPACE[1]}", "en")
    }


def test_an_unknown_pairing_is_refused(indexed, tiny_table, monkeypatch, capsys):
    store_engine = lambda s: SearchEngine(Store(indexed), clip(), s)  # noqa: E731
    engine = store_engine(QuerySettings(text_encoder="sentence-transformers/clip-ViT-B-32-multilingual-v1"))
    with pytest.raises(QueryError, match="image space of ViT-B-32/openai.*test/tiny-mclip"):
        engine.search(Query(text=EN))
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER", "M-CLIP/XLM-Roberta-Large-Vit-L-14")
    code, _, err = run(capsys, "--data-dir", indexed, "search", VI_MARKS)
    assert code == 2 and "ViT-L-14/openai" in err
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER", "someone/unknown-encoder")
    code, _, err = run(capsys, "--data-dir", indexed, "search", VI_MARKS)
    assert code == 2 and "query.text_encoder must be one of auto, none" in err
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER", "auto")
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER_PATH", "/some/folder")
    code, _, err = run(capsys, "--data-dir", indexed, "search", VI_MARKS)
    assert code == 2 and "query.text_encoder_path needs query.text_encoder to name" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "x", "--lang", "xx"], "unknown query language 'xx'"),
        (["search", "--like", "1", "--lang", "vi"], "--lang goes with a text query"),
    ],
)
def test_bad_language_flags(indexed, capsys, args, message):
    code, _, err = run(capsys, "--data-dir", indexed, *args)
    assert code == 2 and message in err


def test_doctor_lists_encoders_translator_and_ocr(tiny_models, tiny_table, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER", "test/tiny-mclip")
    monkeypatch.setenv("EVR_QUERY_TEXT_ENCODER_PATH", str(tiny_models["mclip"]))
    monkeypatch.setenv("EVR_QUERY_TRANSLATE", "Helsinki-NLP/opus-mt-vi-en")
    code, report = evr("--data-dir", tmp_path, "doctor", "--json", capsys=capsys)
    assert code == 0
    lines = {line.split(" for ")[0]: line for line in report["text_encoders"]}
    assert set(lines) == set(TEXT_ENCODERS)
    assert "(fits this index): present" in lines["test/tiny-mclip"]
    assert "ViT-L-14/openai: MISSING" in lines["M-CLIP/XLM-Roberta-Large-Vit-L-14"]  # the folder is tiny-mclip's
    assert report["translator"].startswith("Helsinki-NLP/opus-mt-vi-en: MISSING")
    assert "translate with Helsinki-NLP/opus-mt-vi-en" not in report["query_routing"]
    assert report["query_routing"].startswith("en -> clip:") and "test/tiny-mclip" in report["query_routing"]
    assert any(line.startswith("tesseract: reads ['vi', 'en']") for line in report["ocr_backends"])


def test_with_several_models_an_english_only_one_reads_vietnamese_through_its_configured_encoder(
    two_models, tiny_models, tiny_table, monkeypatch
):
    """[clip] (the test space) has an aligned encoder configured: it reads the Vietnamese query
    through it, beside the multilingual model ("b", ViT-S-32 standing for one), and the search
    fuses both."""
    store, clip_encoder, other, _ = two_models
    monkeypatch.setattr(table, "MULTILINGUAL_CLIP_MODELS", (*table.MULTILINGUAL_CLIP_MODELS, "ViT-S-32"))
    settings = QuerySettings(text_encoder="test/tiny-mclip", text_encoder_path=str(tiny_models["mclip"]))
    engine = SearchEngine(store, clip_encoder, settings, others={"b": other})
    hits = engine.search(Query(text=VI_PLAIN, k=30))  # every keyframe: each is in both models' rankings
    assert {(h.encoder, h.query_language, h.match) for h in hits} == {
        ("test/tiny-mclip, clip:ViT-S-32/none", "vi", "clip+b")
    }
    english = engine.search(Query(text=EN, k=5))
    assert {h.encoder for h in english} == {f"clip:{SPACE[0]}/{SPACE[1]}, clip:ViT-S-32/none"}
