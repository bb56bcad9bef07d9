"""Errors as clients see them: OpenAI-shaped bodies, the right status, the field named, an
x-request-id on every response."""

import httpx
import openai
import pytest

from conftest import TEST_KEY

HEADERS = {"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"}


def post(keel, path, body, headers=HEADERS):
    data = body if isinstance(body, (bytes, str)) else None
    return httpx.post(f"{keel.base}{path}", content=data, json=None if data is not None else body, headers=headers, timeout=60)


def assert_openai_error(r, status, code=None, param=None):
    assert r.status_code == status, r.text
    assert r.headers["x-request-id"].startswith("req_")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if code:
        assert err["code"] == code
    if param:
        assert err["param"] == param
    return err


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"


def test_bad_or_missing_key_is_401(keel):
    bad = openai.OpenAI(base_url=f"{keel.base}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    r = httpx.get(f"{keel.base}/v1/models")
    assert_openai_error(r, 401, code="invalid_api_key")


def test_health_is_on_the_allow_list(keel):
    assert httpx.get(f"{keel.base}/healthz").status_code == 200
    r = httpx.get(f"{keel.base}/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_malformed_json_names_line_and_column(keel):
    err = assert_openai_error(post(keel, "/v1/chat/completions", b'{"model": "smollm2",\n "messages": [}'), 400, code="invalid_json")
    assert "line 2 column" in err["message"]


def test_wrong_field_type_names_the_field(keel):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
    assert_openai_error(post(keel, "/v1/chat/completions", body), 400, param="temperature")
    body = {"model": "smollm2", "messages": [{"role": "wizard", "content": "x"}]}
    assert_openai_error(post(keel, "/v1/chat/completions", body), 400, param="messages[0].role")


def test_unsupported_fields_are_400_naming_them(client):
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "x"}], tools=tools)
    assert e.value.param == "tools"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "x"}], n=2)
    assert e.value.param == "n"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}
        )
    assert e.value.param == "response_format"


def test_tools_pass_through_to_a_model_that_supports_them(client):
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    r = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "x"}], tools=tools)
    assert r.choices[0].message.content is not None or r.choices[0].message.tool_calls


def test_body_over_the_limit_is_413(keel):
    big = {"model": "smollm2", "messages": [{"role": "user", "content": "x" * 70_000}]}
    assert_openai_error(post(keel, "/v1/chat/completions", big), 413, code="payload_too_large")


def test_unknown_path_and_method(keel):
    assert_openai_error(httpx.get(f"{keel.base}/v1/nope", headers=HEADERS), 404)
    assert_openai_error(httpx.get(f"{keel.base}/v1/chat/completions", headers=HEADERS), 405)


def test_empty_messages_and_embedding_input(keel):
    assert_openai_error(post(keel, "/v1/chat/completions", {"model": "smollm2", "messages": []}), 400, param="messages")
    assert_openai_error(post(keel, "/v1/embeddings", {"model": "minilm", "input": ["ok", ""]}), 400, param="input[1]")


def test_garbage_inputs_never_crash_the_server(keel):
    for body in [b"", b"null", b"[]", b"\xff\xfe", b'{"model": 5}', b'{"model":"smollm2","messages":[{"role":"user"}]}',
                 b'{"model":"smollm2","messages":"hi"}', b'{"model":"smollm2","messages":[{"role":"user","content":"x"}],"max_tokens":-1}']:
        r = post(keel, "/v1/chat/completions", body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert "error" in r.json()
    assert httpx.get(f"{keel.base}/healthz").status_code == 200
