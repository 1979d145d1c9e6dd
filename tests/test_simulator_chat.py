"""Simulator: the Chat with AI API (JSON and SSE) and conversations, against reference §3 and §5."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from onemin_relay.simulator.answers import expected_answer
from onemin_relay.simulator.app import create_simulator_app
from tests.harness import KEY_A, KEY_B, SimulatorHandle
from tests.harness import SimulatorFactory as Factory


def chat_body(
    prompt: Any = "Explain quantum computing in simple terms", model: str = "gpt-4o-mini", **extra: Any
) -> dict[str, Any]:
    prompt_object = {"prompt": prompt, **extra}
    return {"type": "UNIFY_CHAT_WITH_AI", "model": model, "promptObject": prompt_object}


async def upload(api: httpx.AsyncClient, name: str, data: bytes, mime: str) -> dict[str, Any]:
    response = await api.post("/api/assets", files={"asset": (name, data, mime)})
    assert response.status_code == 200, response.text
    content: dict[str, Any] = response.json()["fileContent"]
    return content


# --- non-streaming --------------------------------------------------------------------------------


async def test_answer_is_result_object_zero_with_the_documented_record(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/chat-with-ai", json=chat_body())

    assert response.status_code == 200
    record = response.json()["aiRecord"]
    prompt = "Explain quantum computing in simple terms"
    assert record["aiRecordDetail"]["resultObject"] == [expected_answer(prompt)]
    assert record["aiRecordDetail"]["promptObject"] == {
        "prompt": prompt,
        "linkContentList": [],
        "searchContentList": [],
    }
    assert record["status"] == "SUCCESS"
    assert record["type"] == "UNIFY_CHAT_WITH_AI"
    assert record["model"] == "gpt-4o-mini"
    assert record["modelDetail"] == {"name": "gpt-4o-mini", "provider": "OPENAI"}
    assert record["conversationId"] is None
    assert set(record) == {  # §2, the fields of the §3.5 example plus the original docs' additionalData
        "uuid", "userId", "teamId", "teamUser", "model", "type", "metadata", "rating", "feedback",
        "conversationId", "status", "createdAt", "aiRecordDetail", "modelDetail", "additionalData",
    }  # fmt: skip
    assert set(record["teamUser"]) == {  # §2.1
        "teamId", "userId", "userName", "userAvatar", "status", "role", "creditLimit", "usedCredit",
        "createdAt", "createdBy", "updatedAt", "updatedBy",
    }  # fmt: skip
    assert record["teamUser"]["teamId"] == record["teamId"]
    assert record["teamUser"]["userId"] == record["userId"]


def test_answers_carry_multibyte_text() -> None:
    answer = expected_answer("hi")
    assert "«" in answer
    assert "—" in answer
    assert "🤖" in answer
    assert "你好" in answer
    assert len(answer.encode()) > len(answer)


async def test_metadata_prices_tokens_with_the_catalogue(api: httpx.AsyncClient) -> None:
    prompt = "x" * 1200  # 300 tokens at four characters a token
    record = (await api.post("/api/chat-with-ai", json=chat_body(prompt))).json()["aiRecord"]

    metadata = record["metadata"]
    assert metadata["inputToken"] == 300
    assert metadata["inputCredit"] == 45  # 300 × INPUT 0.15, the live gpt-4o-mini observation
    output_tokens = (len(expected_answer(prompt)) + 3) // 4
    assert metadata["outputToken"] == output_tokens
    assert metadata["outputCredit"] == round(output_tokens * 0.6)
    assert metadata["credit"] == metadata["inputCredit"] + metadata["outputCredit"]
    assert metadata["totalToken"] == 300 + output_tokens
    assert metadata["finishReason"] == "stop"


async def test_used_credit_lags_one_request(api: httpx.AsyncClient) -> None:
    first = (await api.post("/api/chat-with-ai", json=chat_body("one"))).json()["aiRecord"]
    second = (await api.post("/api/chat-with-ai", json=chat_body("two"))).json()["aiRecord"]

    assert first["teamUser"]["usedCredit"] == 0
    assert second["teamUser"]["usedCredit"] == first["metadata"]["credit"]
    assert first["teamUser"]["creditLimit"] == 214_748_364


async def test_unknown_keys_in_the_body_are_ignored(api: httpx.AsyncClient) -> None:
    body = chat_body("hello", webSearch=True, isMixed=False)
    body["imageList"] = ["images/nothing.png"]
    body["metadata"] = {"messageGroup": "1727596968593_71"}
    response = await api.post("/api/chat-with-ai", json=body)
    assert response.status_code == 200
    assert response.json()["aiRecord"]["aiRecordDetail"]["resultObject"] == [expected_answer("hello")]


def test_youtube_links_are_noticed_up_to_three() -> None:
    links = " ".join(f"https://www.youtube.com/watch?v=video{index}" for index in range(5))
    assert "Watched 1 YouTube video(s)" in expected_answer("sum up https://youtu.be/abcdefg please")
    assert "Watched 3 YouTube video(s)" in expected_answer(f"compare {links}")
    assert "YouTube" not in expected_answer("no videos here: https://example.com/watch?v=abcdefg")


async def test_web_search_settings_show_in_the_answer(api: httpx.AsyncClient) -> None:
    settings = {"webSearchSettings": {"webSearch": True, "numOfSite": 5, "maxWord": 500}}
    record = (await api.post("/api/chat-with-ai", json=chat_body("news?", settings=settings))).json()[
        "aiRecord"
    ]
    answer = record["aiRecordDetail"]["resultObject"][0]
    assert answer == expected_answer("news?", web_search=True, sites=5)
    assert "Web search: 5 sites" in answer


# --- validation and errors ------------------------------------------------------------------------


async def test_missing_or_unknown_key_is_401_shape_a(api: httpx.AsyncClient) -> None:
    for headers in ({"API-KEY": ""}, {"API-KEY": "sk-unknown"}):
        response = await api.post("/api/chat-with-ai", json=chat_body(), headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "error": {"code": "UNAUTHORIZED", "message": "Invalid or missing API key"},
        }


async def test_without_a_key_list_any_non_empty_key_works() -> None:
    app = create_simulator_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sim.test") as client:
        accepted = await client.post("/api/chat-with-ai", json=chat_body(), headers={"API-KEY": "anything"})
        refused = await client.post("/api/chat-with-ai", json=chat_body())
    assert accepted.status_code == 200
    assert refused.status_code == 401


@pytest.mark.parametrize("prompt", [123, None, {"text": "hi"}, ["hi"]])
async def test_non_string_prompt_is_422(api: httpx.AsyncClient, prompt: Any) -> None:
    response = await api.post("/api/chat-with-ai", json=chat_body(prompt))
    assert response.status_code == 422
    assert response.json() == {
        "success": False,
        "error": {
            "code": "PROMPT_OBJECT_VALIDATION_FAILED",
            "message": "Invalid prompt object",
            "details": [{"field": "prompt", "message": "prompt must be a string"}],
        },
    }


async def test_openai_messages_instead_of_prompt_is_422(api: httpx.AsyncClient) -> None:
    body = {"type": "UNIFY_CHAT_WITH_AI", "model": "gpt-4o", "promptObject": {"messages": [{"role": "user"}]}}
    response = await api.post("/api/chat-with-ai", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "PROMPT_OBJECT_VALIDATION_FAILED"


@pytest.mark.parametrize("model", ["no-such-model", "claude-sonnet-4-6"])  # unknown, and DISABLED (renamed)
async def test_unknown_or_disabled_model_is_400_unsupported_model(api: httpx.AsyncClient, model: str) -> None:
    response = await api.post("/api/chat-with-ai", json=chat_body(model=model))
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "UNSUPPORTED_MODEL"
    assert model in response.json()["error"]["message"]


async def test_chat_model_error_shape_is_switchable(make_api: Factory) -> None:
    api = make_api(chat_model_error_shape="B")
    response = await api.post("/api/chat-with-ai", json=chat_body(model="no-such-model"))
    assert response.status_code == 400
    assert response.json()["errorCode"] == "UNSUPPORTED_MODEL"


async def test_type_is_required_unless_switched_off(make_api: Factory) -> None:
    body = chat_body()
    del body["type"]
    strict = await make_api().post("/api/chat-with-ai", json=body)
    lenient = await make_api(require_type=False).post("/api/chat-with-ai", json=body)
    assert strict.status_code == 400
    assert strict.json()["error"]["code"] == "INVALID_REQUEST"
    assert lenient.status_code == 200
    assert lenient.json()["aiRecord"]["type"] == "UNIFY_CHAT_WITH_AI"


async def test_other_types_are_rejected(api: httpx.AsyncClient) -> None:
    body = {**chat_body(), "type": "CHAT_WITH_PDF"}
    response = await api.post("/api/chat-with-ai", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]"])
async def test_malformed_body_is_400_shape_a(api: httpx.AsyncClient, content: bytes) -> None:
    response = await api.post(
        "/api/chat-with-ai", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_REQUEST"


async def test_absurdly_nested_body_is_400_not_500(api: httpx.AsyncClient) -> None:
    content = b"[" * 100_000 + b"]" * 100_000
    response = await api.post(
        "/api/chat-with-ai", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_oversized_body_is_refused(make_api: Factory) -> None:
    api = make_api(max_json_bytes=1000)
    response = await api.post("/api/chat-with-ai", json=chat_body("x" * 2000))
    assert response.status_code == 413


# --- attachments ----------------------------------------------------------------------------------


async def test_uploaded_images_and_files_are_accepted_and_counted(api: httpx.AsyncClient) -> None:
    image = await upload(api, "chart.png", b"\x89PNG\r\n\x1a\n0000", "image/png")
    document = await upload(api, "notes.pdf", b"%PDF-1.4 test", "application/pdf")
    attachments = {"images": [image["path"]], "files": [document["uuid"]]}

    response = await api.post(
        "/api/chat-with-ai", json=chat_body("compare", model="gpt-4o", attachments=attachments)
    )

    assert response.status_code == 200
    record = response.json()["aiRecord"]
    assert record["aiRecordDetail"]["resultObject"] == [expected_answer("compare", images=1, files=1)]
    assert record["metadata"]["inputCredit"] == 430  # 2 tokens × INPUT 2.5 + one image at LOW_IMAGE 425


async def test_image_urls_and_cdn_urls_are_accepted(api: httpx.AsyncClient) -> None:
    image = await upload(api, "photo.jpg", b"\xff\xd8\xff", "image/jpeg")
    attachments = {"images": [f"http://sim.test/cdn/{image['path']}", "https://example.com/cat.png"]}
    response = await api.post(
        "/api/chat-with-ai", json=chat_body("what", model="gpt-4o", attachments=attachments)
    )
    assert response.status_code == 200
    assert response.json()["aiRecord"]["aiRecordDetail"]["resultObject"] == [
        expected_answer("what", images=2)
    ]


async def test_unknown_attachments_are_rejected(api: httpx.AsyncClient) -> None:
    missing_image = await api.post(
        "/api/chat-with-ai", json=chat_body("x", model="gpt-4o", attachments={"images": ["images/none.png"]})
    )
    image = await upload(api, "a.png", b"\x89PNG", "image/png")
    path_as_file_id = await api.post(
        "/api/chat-with-ai", json=chat_body("x", model="gpt-4o", attachments={"files": [image["path"]]})
    )
    assert missing_image.status_code == 400
    assert path_as_file_id.status_code == 400
    assert "fileContent.uuid" in path_as_file_id.json()["error"]["message"]


async def test_images_for_a_text_only_model_follow_the_switch(make_api: Factory) -> None:
    for setting, status in (("error", 400), ("ignore", 200)):
        api = make_api(non_vision_images=setting)
        image = await upload(api, "a.png", b"\x89PNG", "image/png")
        body = chat_body("see", model="gpt-3.5-turbo", attachments={"images": [image["path"]]})
        response = await api.post("/api/chat-with-ai", json=body)
        assert response.status_code == status
        if status == 200:
            assert response.json()["aiRecord"]["aiRecordDetail"]["resultObject"] == [expected_answer("see")]


# --- conversations --------------------------------------------------------------------------------


async def new_conversation(api: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body = {"type": "UNIFY_CHAT_WITH_AI", "title": "My AI Conversation", "model": "gpt-4o-mini", **overrides}
    return await api.post("/api/conversations", json=body)


async def test_conversation_is_created_with_the_documented_shape(api: httpx.AsyncClient) -> None:
    response = await new_conversation(api)
    assert response.status_code == 200
    conversation = response.json()["conversation"]
    assert conversation["title"] == "My AI Conversation"
    assert conversation["status"] == "ACTIVE"
    assert conversation["conversationFile"] == []
    assert conversation["metadata"] == {}
    assert len(conversation["uuid"]) == 36


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "t" * 92}, "title"),
        ({"title": ""}, "title"),
        ({"type": "CHAT_WITH_AI"}, "type"),
        ({"model": "nope"}, "model"),
    ],
)
async def test_invalid_conversations_are_400(
    api: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    response = await new_conversation(api, **overrides)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "REQUEST_BODY_VALIDATION_FAILED"
    assert error["details"][0]["field"] == field


async def test_title_of_91_characters_is_allowed(api: httpx.AsyncClient) -> None:
    assert (await new_conversation(api, title="t" * 91)).status_code == 200


async def test_history_is_kept_and_limited_by_history_message_limit(api: httpx.AsyncClient) -> None:
    conversation_id = (await new_conversation(api)).json()["conversation"]["uuid"]

    async def ask(prompt: str, limit: int | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"conversationId": conversation_id}
        if limit is not None:
            extra["settings"] = {"historySettings": {"isMixed": False, "historyMessageLimit": limit}}
        response = await api.post("/api/chat-with-ai", json=chat_body(prompt, **extra))
        assert response.status_code == 200
        record: dict[str, Any] = response.json()["aiRecord"]
        return record

    first = await ask("first")
    second = await ask("second")
    third = await ask("third", limit=3)
    fourth = await ask("fourth", limit=0)

    assert first["aiRecordDetail"]["resultObject"] == [expected_answer("first")]
    assert first["conversationId"] == conversation_id
    assert second["aiRecordDetail"]["resultObject"] == [expected_answer("second", history=2)]
    assert third["aiRecordDetail"]["resultObject"] == [expected_answer("third", history=3)]
    assert fourth["aiRecordDetail"]["resultObject"] == [expected_answer("fourth")]
    assert third["metadata"]["inputToken"] > second["metadata"]["inputToken"]  # history is billed as input


async def test_history_is_bounded_in_characters_over_all_conversations(make_api: Factory) -> None:
    """Only a count bound (200 messages × 10000 conversations) held the history: with 32 MiB prompts that is
    unbounded. Past `history_chars`, the oldest messages go, other conversations' first."""
    api = make_api(history_chars=3000)
    first = (await new_conversation(api)).json()["conversation"]["uuid"]
    second = (await new_conversation(api)).json()["conversation"]["uuid"]
    prompts = [letter * 1000 for letter in "abcd"]  # each exchange keeps 1000 + ~150 characters

    async def ask(conversation_id: str, prompt: str) -> list[str]:
        response = await api.post("/api/chat-with-ai", json=chat_body(prompt, conversationId=conversation_id))
        assert response.status_code == 200
        result: list[str] = response.json()["aiRecord"]["aiRecordDetail"]["resultObject"]
        return result

    await ask(first, prompts[0])
    await ask(first, prompts[1])
    await ask(second, prompts[2])  # over 3000: the first conversation's oldest message goes
    assert await ask(first, prompts[3]) == [expected_answer(prompts[3], history=3)]


async def test_conversations_belong_to_their_key(api: httpx.AsyncClient) -> None:
    conversation_id = (await new_conversation(api)).json()["conversation"]["uuid"]
    body = chat_body("hi", conversationId=conversation_id)
    other = await api.post("/api/chat-with-ai", json=body, headers={"API-KEY": KEY_B})
    unknown = await api.post("/api/chat-with-ai", json=chat_body("hi", conversationId="nope"))
    assert other.status_code == 400
    assert unknown.status_code == 400


async def test_delete_conversation(api: httpx.AsyncClient) -> None:
    conversation_id = (await new_conversation(api)).json()["conversation"]["uuid"]
    deleted = await api.delete(f"/api/conversations/{conversation_id}")
    again = await api.delete(f"/api/conversations/{conversation_id}")
    use = await api.post("/api/chat-with-ai", json=chat_body("hi", conversationId=conversation_id))
    assert deleted.status_code == 200
    assert deleted.json()["conversation"]["status"] == "DELETED"
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "NOT_FOUND"
    assert use.status_code == 400


# --- streaming (real sockets) ---------------------------------------------------------------------


def stream_events(sim: SimulatorHandle, body: dict[str, Any], **headers: str) -> list[tuple[str, str]]:
    with (
        httpx.Client(base_url=sim.url, headers={"API-KEY": KEY_A, **headers}, timeout=30) as client,
        connect_sse(client, "POST", "/api/chat-with-ai?isStreaming=true", json=body) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"] == "text/event-stream"
        return [(event.event, event.data) for event in source.iter_sse()]


def contents(events: list[tuple[str, str]]) -> list[str]:
    return [json.loads(data)["content"] for name, data in events if name == "content"]


def test_stream_sends_content_result_done(sim: SimulatorHandle) -> None:
    events = stream_events(sim, chat_body("Tell me about AI"))

    names = [name for name, _ in events]
    answer = expected_answer("Tell me about AI")
    assert names[0] == "content"
    assert json.loads(events[0][1]) == {"content": ""}
    assert names[-2:] == ["result", "done"]
    assert set(names[:-2]) == {"content"}
    assert "".join(contents(events)) == answer
    assert len(contents(events)) > 2  # really split into several deltas
    record = json.loads(events[-2][1])["aiRecord"]
    assert record["aiRecordDetail"]["resultObject"] == [answer]
    assert record["metadata"]["credit"] > 0
    assert json.loads(events[-1][1]) == {"message": "Stream completed"}


def test_stream_result_without_metadata_is_switchable(sim: SimulatorHandle) -> None:
    """§18.1: whether the streamed `result` record carries the credit/token metadata is unconfirmed."""
    sim.configure(stream_result_metadata=False)
    events = stream_events(sim, chat_body("Tell me about AI"))
    record = json.loads(events[-2][1])["aiRecord"]
    assert [name for name, _ in events[-2:]] == ["result", "done"]
    assert record["metadata"] is None
    assert record["aiRecordDetail"]["resultObject"] == [expected_answer("Tell me about AI")]


def test_stream_chunk_size_is_configurable(sim: SimulatorHandle) -> None:
    sim.configure(stream_chunk_chars=4, empty_first_content=False)
    pieces = contents(stream_events(sim, chat_body("hello")))
    assert pieces[0] != ""
    assert all(len(piece) <= 4 for piece in pieces)
    assert "".join(pieces) == expected_answer("hello")


def test_stream_validation_errors_come_back_as_json_before_streaming(sim: SimulatorHandle) -> None:
    with httpx.Client(base_url=sim.url, headers={"API-KEY": KEY_A}) as client:
        response = client.post("/api/chat-with-ai?isStreaming=true", json=chat_body(42))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "PROMPT_OBJECT_VALIDATION_FAILED"


# --- scripted answers (a model that uses tools) -----------------------------------------------------

CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def answer_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["aiRecord"]["aiRecordDetail"]["resultObject"][0]
    return text


async def test_queued_answers_come_in_order_for_that_key_only(api: httpx.AsyncClient) -> None:
    queued = await api.post("/_sim/answers", json={"key": KEY_A, "answers": [CALL, "then prose [1]"]})
    assert queued.json() == {"waiting": 2}
    other = await api.post("/api/chat-with-ai", json=chat_body("hi"), headers={"API-KEY": KEY_B})
    assert answer_of(other) == expected_answer("hi")
    assert answer_of(await api.post("/api/chat-with-ai", json=chat_body("hi"))) == CALL
    assert answer_of(await api.post("/api/chat-with-ai", json=chat_body("hi"))) == "then prose [1]"
    assert answer_of(await api.post("/api/chat-with-ai", json=chat_body("hi"))) == expected_answer("hi")


@pytest.mark.parametrize(
    "body",
    [{}, {"key": KEY_A}, {"key": KEY_A, "answers": "x"}, {"key": KEY_A, "answers": [""]}, {"answers": ["x"]}],
)
async def test_queueing_answers_wants_a_key_and_texts(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    assert (await api.post("/_sim/answers", json=body)).status_code == 400


async def test_the_queue_is_bounded(api: httpx.AsyncClient) -> None:
    assert (await api.post("/_sim/answers", json={"key": KEY_A, "answers": ["x"] * 101})).status_code == 400


async def test_the_answer_magic_word_is_decoded_and_the_last_one_wins(api: httpx.AsyncClient) -> None:
    prompt = "User: [[sim:answer=old]]\n\nUser: now [[sim:answer=%5B1%5D " + CALL + "]] [[sim:answer=unclosed"
    assert answer_of(await api.post("/api/chat-with-ai", json=chat_body(prompt))) == "[1] " + CALL


async def test_a_scripted_answer_streams_like_any_answer(api: httpx.AsyncClient) -> None:
    await api.post("/_sim/answers", json={"key": KEY_A, "answers": [CALL]})
    async with api.stream("POST", "/api/chat-with-ai?isStreaming=true", json=chat_body("hi")) as response:
        body = (await response.aread()).decode()
    pieces = [json.loads(line[6:])["content"] for line in body.splitlines() if '"content"' in line[:20]]
    assert len(pieces) > 2
    assert "".join(pieces) == CALL
