"""Long descriptions into queries (search/planner/): the rules planner on descriptions in AIC's
style (a table: the plan each must give), the `llm` planner against a stand-in OpenAI-compatible
server (the request carries the schema; a valid answer is the plan; every kind of bad answer
falls back to the rules with one line), the `local` planner with a tiny random model built here,
and `evr search --plan` running what `evr plan` says."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evr.search.planner import PLAN_SCHEMA, PlanSettings, make_plan
from evr.search.planner import rules as rules_planner
from evr.ui.text import plain

from .conftest import evr, run
from .test_app import app, app_index  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

# description -> the events (visual, on-screen words, spoken words, objects, colours), and the gap.
E = dict  # an event: only what it holds
CASES = [
    (
        "Một phóng viên đứng trước con đường ngập nước, phía dưới có dòng chữ 'LŨ LỤT Ở HUẾ'.",
        [E(visual="Một phóng viên đứng trước con đường ngập nước, phía dưới", ocr="LŨ LỤT Ở HUẾ", objects=["person"])],
        None,
    ),
    (
        "Mot phong vien dung truoc con duong ngap nuoc, co dong chu 'LU LUT O HUE'. Sau do hai chiec xe may chay qua.",
        [
            E(visual="Mot phong vien dung truoc con duong ngap nuoc", ocr="LU LUT O HUE", objects=["person"]),
            E(visual="hai chiec xe may chay qua", objects=["motorcycle:2"]),
        ],
        None,
    ),
    (
        "A man in a red shirt says \"we need help\" in front of a flooded street, then 3 cars drive by within 10 seconds",
        [
            E(visual="A man in a red shirt in front of a flooded street", speech="we need help", objects=["person"], colors=["red"]),
            E(visual="3 cars drive by", objects=["car:3"]),
        ],
        10.0,
    ),
    ("Hai người đàn ông mặc áo trắng bắt tay nhau.", [E(visual="Hai người đàn ông mặc áo trắng bắt tay nhau", objects=["person:2"], colors=["white"])], None),
    ("Hai nguoi dan ong mac ao trang bat tay nhau.", [E(visual="Hai nguoi dan ong mac ao trang bat tay nhau", objects=["person:2"], colors=["white"])], None),
    ("Bộ trưởng phát biểu: “Chúng ta phải hành động ngay”.", [E(visual="Bộ trưởng", speech="Chúng ta phải hành động ngay")], None),
    ("Người dẫn chương trình nói \"xin chào quý vị\" rồi màn hình hiện chữ \"TIN NÓNG\"", [E(visual="Người dẫn chương trình", speech="xin chào quý vị", objects=[]), E(visual="màn hình hiện chữ", ocr="TIN NÓNG")], None),
    ("Một con chó màu nâu chạy trên bãi cỏ xanh lá.", [E(visual="Một con chó màu nâu chạy trên bãi cỏ xanh lá", objects=["dog"], colors=["brown", "green"])], None),
    ("mot con cho mau nau chay tren bai co", [E(visual="mot con cho mau nau chay tren bai co", objects=["dog"], colors=["brown"])], None),
    ("A blue bus stops at a station. After that, two people get off.", [E(visual="A blue bus stops at a station", objects=["bus"], colors=["blue"]), E(visual="two people get off", objects=["person:2"])], None),
    ("Cảnh sát chặn đường. Tiếp theo, một chiếc xe tải bị lật. Cuối cùng, đội cứu hộ đến.", [E(visual="Cảnh sát chặn đường"), E(visual="một chiếc xe tải bị lật", objects=["truck"]), E(visual="đội cứu hộ đến")], None),
    ("Canh sat chan duong. Tiep theo, mot chiec xe tai bi lat. Cuoi cung, doi cuu ho den.", [E(visual="Canh sat chan duong"), E(visual="mot chiec xe tai bi lat", objects=["truck"]), E(visual="doi cuu ho den")], None),
    ("The anchor says 'good evening' and then a map of Vietnam appears.", [E(visual="The anchor", speech="good evening"), E(visual="a map of Vietnam appears")], None),
    ("Ba chiếc thuyền trên sông, bầu trời màu cam lúc hoàng hôn", [E(visual="Ba chiếc thuyền trên sông, bầu trời màu cam lúc hoàng hôn", objects=["boat:3"], colors=["orange"])], None),
    ("A sign that reads \"NO ENTRY\" next to a yellow taxi", [E(visual="A sign next to a yellow taxi", ocr="NO ENTRY", colors=["yellow"])], None),
    ("Một người phụ nữ cầm ô đi dưới mưa, trên màn hình có chữ «CẢNH BÁO MƯA LỚN»", [E(visual="Một người phụ nữ cầm ô đi dưới mưa, trên màn hình có chữ", ocr="CẢNH BÁO MƯA LỚN", objects=["person"])], None),
    ("Hai đội bóng ra sân, sau đó cầu thủ áo đỏ ghi bàn trong vòng 30 giây.", [E(visual="Hai đội bóng ra sân"), E(visual="cầu thủ áo đỏ ghi bàn", colors=["red"])], 30.0),
    ("Five soldiers march past a black car; finally a flag is raised", [E(visual="Five soldiers march past a black car", objects=["person:5", "car"], colors=["black"]), E(visual="a flag is raised")], None),
    ("Phóng viên cho biết \"đã có 5 người bị thương\" khi đứng cạnh xe cứu thương", [E(visual="Phóng viên khi đứng cạnh xe cứu thương", speech="đã có 5 người bị thương")], None),
    ("Tiêu đề 'GIÁ VÀNG TĂNG MẠNH' xuất hiện trên nền xanh dương", [E(visual="Tiêu đề xuất hiện trên nền xanh dương", ocr="GIÁ VÀNG TĂNG MẠNH", colors=["blue"])], None),
    ("A woman with two dogs walks in the park, then she sits on a bench within 1 minute", [E(visual="A woman with two dogs walks in the park", objects=["person", "dog:2"]), E(visual="she sits on a bench")], 60.0),
    ("Bốn chiếc ô tô màu trắng xếp hàng trước cổng", [E(visual="Bốn chiếc ô tô màu trắng xếp hàng trước cổng", objects=["car:4"], colors=["white"])], None),
]  # fmt: skip


def expected_event(e: dict) -> dict:
    return {"visual": e["visual"], "ocr": e.get("ocr", ""), "speech": e.get("speech", ""), "objects": e.get("objects", []), "colors": e.get("colors", [])}  # fmt: skip


@pytest.mark.parametrize("description, events, within", CASES, ids=[c[0][:40] for c in CASES])
def test_the_rules_planner_reads_each_description_as_written_down(description, events, within):
    plan = rules_planner.plan(description)
    assert [e.to_json() for e in plan.events] == [expected_event(e) for e in events]
    assert plan.within_s == within and plan.planner == "rules"


def test_twenty_descriptions_or_more_are_in_the_table():
    assert len(CASES) >= 20
    assert sum(any(c in d for c in "ạếộữờ") for d, _, _ in CASES) >= 8  # Vietnamese with marks
    assert sum(d.isascii() and any(w in d.lower() for w in ("mot ", "hai ", "canh")) for d, _, _ in CASES) >= 3


# -- the llm planner against a stand-in --------------------------------------------------------------


class ChatServer:
    """An OpenAI-compatible /v1/chat/completions that answers as `answer(request body)` says:
    (status, body bytes), or sleeps first when `delay_s` is set."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answer = lambda body: (200, b"{}")
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                time.sleep(outer.delay_s)
                status, data = outer.answer(body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def completion(content: str) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()


GOOD = {
    "events": [
        {"visual": "a reporter in front of a flooded street", "ocr": "LŨ LỤT", "objects": ["person"]},
        {"visual": "two motorbikes pass by", "objects": ["motorcycle:2"], "colors": ["red"]},
    ],
    "within_s": 15,
}
DESCRIPTION = "Một phóng viên đứng trước con đường ngập nước có dòng chữ 'LŨ LỤT'. Sau đó hai chiếc xe máy chạy qua."


@pytest.fixture
def chat(monkeypatch):
    server = ChatServer()
    monkeypatch.setenv("EVR_PLAN_URL", server.url)
    monkeypatch.setenv("EVR_PLAN_MODEL", "tiny-planner")
    monkeypatch.setenv("EVR_PLAN_TIMEOUT_S", "2")
    monkeypatch.setenv("OPENAI_API_KEY", "k-123")
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_the_llm_planner_sends_the_schema_and_its_valid_answer_is_the_plan(chat, capsys):
    chat.answer = lambda body: (200, completion(json.dumps(GOOD)))
    code, plan = evr("plan", DESCRIPTION, "--json", capsys=capsys)
    assert code == 0 and plan["planner"] == "llm" and plan["notes"] == []
    assert [e["visual"] for e in plan["events"]] == [
        "a reporter in front of a flooded street",
        "two motorbikes pass by",
    ]
    assert plan["events"][0]["ocr"] == "LŨ LỤT" and plan["within_s"] == 15
    assert plan["command"] == [
        "evr", "search", "a reporter in front of a flooded street", "--ocr", "LŨ LỤT", "--object", "person",
        "--then", "two motorbikes pass by", "--within", "15",
    ]  # fmt: skip
    assert plan["unsearched"] == ["event 2's objects", "event 2's colours"]
    (sent,) = chat.requests
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer k-123"
    assert sent["body"]["model"] == "tiny-planner" and sent["body"]["messages"][-1]["content"] == DESCRIPTION
    schema = sent["body"]["response_format"]
    assert schema["type"] == "json_schema" and schema["json_schema"]["schema"] == PLAN_SCHEMA


@pytest.mark.parametrize(
    "case, why",
    [
        ("malformed", "its answer is not JSON"),
        ("wrong schema", "events/0: Additional properties are not allowed"),
        ("bad object", "event 1's object 'person:0' asks for a count from 1 to 10000"),
        ("not a completion", "its answer is not a chat completion"),
        ("error 500", "answered 500"),
        ("hang", "did not answer within 2 s"),
    ],
)
def test_every_bad_answer_falls_back_to_the_rules_with_one_line(chat, capsys, caplog, case, why):
    bad = {
        "malformed": lambda body: (200, completion('{"events": [{"visual": "a man"')),
        "wrong schema": lambda body: (200, completion(json.dumps({"events": [{"visual": "x", "sql": "DROP"}]}))),
        "bad object": lambda body: (
            200,
            completion(json.dumps({"events": [{"visual": "x", "objects": ["person:0"]}]})),
        ),
        "not a completion": lambda body: (200, b'{"error": "busy"}'),
        "error 500": lambda body: (500, b'{"error": "internal"}'),
        "hang": lambda body: (200, completion(json.dumps(GOOD))),
    }[case]
    chat.answer = bad
    chat.delay_s = 4.0 if case == "hang" else 0.0
    code, plan, err = run(capsys, "plan", DESCRIPTION, "--json")
    assert code == 0 and plan["planner"] == "rules"
    assert plan["events"][0]["ocr"] == "LŨ LỤT" and plan["events"][1]["objects"] == ["motorcycle:2"]
    # One line (the CLI's log handler writes it to stderr; pytest's takes the records here).
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said.startswith("the llm planner gave no plan: ") and why in said and "\n" not in said, said
    assert plan["notes"] == [said.removesuffix("; trying the next one")]


def test_a_description_no_planner_can_read_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setenv("EVR_PLAN_PLANNERS", '["rules"]')
    code, _, err = run(capsys, "plan", "   ")
    assert code == 2 and "the description is empty" in err
    code, _, err = run(capsys, "plan", "x" * 5000)
    assert code == 2 and "at most 4000 characters" in err


# -- the local planner: a tiny random model, built here ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A one-layer Llama with random weights and a word-level tokenizer, saved as a folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "</s>", "{", "}", '"events"', ":", "[", "]", '"visual"', '"a man"', ",", "the", "JSON"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    config = LlamaConfig(
        vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=4096, pad_token_id=1, eos_token_id=2, bos_token_id=2,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-planner")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_local_planner_loads_and_runs_a_model_and_its_noise_falls_back(tiny_model, capsys, caplog, monkeypatch):
    monkeypatch.setenv("EVR_PLAN_PLANNERS", '["local", "rules"]')
    monkeypatch.setenv("EVR_PLAN_LOCAL_MODEL", str(tiny_model))
    code, plan, err = run(capsys, "plan", DESCRIPTION, "--json")
    assert code == 0 and plan["planner"] == "rules"
    # It loaded and generated: what failed is its answer (random weights write noise), not the model.
    (note,) = plan["notes"]
    assert note.startswith("the local planner gave no plan: ") and "cannot load" not in note
    assert any(w in note for w in ("no JSON object", "not JSON", "events", "plan")), note
    assert (
        "Loading weights" not in err and [r.levelname for r in caplog.records].count("WARNING") == 1
    )  # no progress bar
    monkeypatch.setenv("EVR_PLAN_LOCAL_MODEL", str(tiny_model / "missing"))
    code, plan, err = run(capsys, "plan", DESCRIPTION, "--json")
    assert code == 0 and "cannot load" in plan["notes"][0]


def test_a_planned_search_runs_what_evr_plan_says(indexed, capsys, monkeypatch):
    monkeypatch.setenv("EVR_PLAN_PLANNERS", '["rules"]')
    description = "Hai người đi bộ trên phố. Sau đó một người đứng lại trong vòng 20 giây"
    code, plan = evr("--data-dir", indexed, "plan", description, "--json", capsys=capsys)
    assert code == 0 and len(plan["events"]) == 2 and plan["within_s"] == 20
    code, planned, err = run(capsys, "--data-dir", indexed, "search", "--plan", description, "--json", "--k", "5")
    assert code == 0 and err.startswith("plan (rules): evr search ")
    code, direct = evr("--data-dir", indexed, "search", *plan["command"][2:], "--json", "--k", "5", capsys=capsys)
    assert code == 0 and [h["keyframe_id"] for h in planned] == [h["keyframe_id"] for h in direct]
    code, _, err = run(capsys, "--data-dir", indexed, "search", "a street", "--plan", description)
    assert code == 2 and "--plan is the query" in err


def test_make_plan_with_rules_alone_checks_the_query_it_gives():
    plan = make_plan("“BREAKING NEWS”", PlanSettings(planners=["rules"]))
    assert plan.events[0].ocr == "BREAKING NEWS" and plan.query().filters.get("ocr") == "BREAKING NEWS"


@pytest.mark.e2e  # the app on tests/test_app.py's index, whose persons need mediapipe
def test_the_apps_plan_button_fills_the_query_form_for_the_user_to_edit(app, monkeypatch):
    monkeypatch.setenv("EVR_PLAN_PLANNERS", '["rules"]')
    app.text_area(key="plan_description").input(
        "Hai người đi bộ trên phố. Sau đó một người đứng lại trong vòng 20 giây"
    )
    app.button(key="plan_button").click().run()
    assert not app.exception
    assert app.radio(key="mode").value == "Temporal" and app.number_input(key="events").value == 2
    assert app.text_input(key="first").value == "Hai người đi bộ trên phố"
    assert app.text_input(key="then").value == "một người đứng lại" and app.number_input(key="within").value == 20
    assert list(app.session_state["object"]) == ["person:2"]  # the first event's filter, in the sidebar's picker
    said = plain("Planned by rules: check the fields below, then search. Event 2's objects are not searched")
    assert any(i.value.startswith(said) for i in app.info), [i.value for i in app.info]
    asked = app.session_state["query_asked"]  # the filled form is a query: it ran
    assert asked.then == ("một người đứng lại",) and asked.within == 20 and asked.filters.get("object") == ("person:2",)
    app.text_area(key="plan_description").input("   ")
    app.button(key="plan_button").click().run()
    assert any("the description is empty" in e.value for e in app.error)
    assert app.text_input(key="first").value == "Hai người đi bộ trên phố"  # the form stays as it was
