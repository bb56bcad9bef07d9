"""keel's /v1/messages driven by the official Anthropic SDK, on the local model and on an
OpenAI-compatible upstream (so the translation runs both ways through one pipeline), and
keel's Anthropic adapter against the mock's Anthropic endpoint."""

import anthropic
import pytest

from conftest import TEST_KEY


@pytest.fixture()
def claude(keel):
    return anthropic.Anthropic(base_url=keel.base, api_key=TEST_KEY, max_retries=0, timeout=120)


def test_messages_on_the_local_model(claude):
    m = claude.messages.create(
        model="smollm2", max_tokens=12, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 5 and 1 <= m.usage.output_tokens <= 12


def test_streamed_messages_match_the_plain_answer(claude):
    kwargs = dict(model="smollm2", max_tokens=10, extra_body={"temperature": 0},
                  messages=[{"role": "user", "content": "Name a colour."}])
    plain = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == plain.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_messages_through_an_openai_compatible_upstream(claude):
    m = claude.messages.create(model="mock-gpt", max_tokens=50, system="be brief",
                               messages=[{"role": "user", "content": "relay this"}])
    assert "relay this" in m.content[0].text


def test_openai_clients_reach_an_anthropic_upstream(client):
    r = client.chat.completions.create(model="mock-claude", messages=[{"role": "user", "content": "via anthropic"}])
    assert "via anthropic" in r.choices[0].message.content
    chunks = list(client.chat.completions.create(
        model="mock-claude", messages=[{"role": "user", "content": "streamed via anthropic"}],
        stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "streamed via anthropic" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_anthropic_errors_have_anthropic_shape(claude):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
