"""Structured logs as operators consume them: with `observe.log_format = "json"` every line is a
JSON object, each request leaves exactly one info line (target keel::request) with its ids,
route, model (and why routing chose it), status, latency and tokens, and neither message content nor any key appears."""

import json
import time

import openai
import pytest

from conftest import TEST_KEY, start_keel, stop

SECRET_WORDS = "the zebra whispers quietly"


def test_json_logs_have_one_line_per_request_and_no_content_or_secrets(mock_upstream, workdir):
    server = start_keel(
        mock_upstream, workdir, name=f"keel-json-{time.time_ns()}", extra='\n[observe]\nlog_format = "json"\n'
    )
    try:
        client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=TEST_KEY, max_retries=0)
        ok = client.chat.completions.with_raw_response.create(
            model="fallback", messages=[{"role": "user", "content": SECRET_WORDS}]
        )
        ok_id = ok.headers["x-request-id"]
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": SECRET_WORDS}])
        missing_id = missing.value.response.headers["x-request-id"]
    finally:
        stop(server.proc)

    text = server.log()
    lines = [l for l in text.splitlines() if l.strip()]
    events = [json.loads(l) for l in lines]  # every line parses: JSON throughout
    requests = [e for e in events if e.get("target") == "keel::request"]

    (served,) = [e for e in requests if e.get("request_id") == ok_id]
    assert served["level"] == "INFO"
    assert served["route"] == "fallback"
    assert served["model"] == "mock-gpt"
    assert served["route_reason"] == (
        "fallback: dead-gpt is first in the route's order; dead-gpt failed: served by fallback mock-gpt"
    )
    assert served["status"] == 200
    assert served["attempts"] == 2, "the dead upstream, then the mock"
    assert served["tenant"] == "acme" and served["key_id"] == "test-key"
    assert served["input_tokens"] == 4 and served["output_tokens"] > 0
    assert served["latency_ms"] > 0
    assert len(served["trace_id"]) == 32

    (failed,) = [e for e in requests if e.get("request_id") == missing_id]
    assert failed["status"] == 404 and failed["error_class"] == "model_not_found"

    assert SECRET_WORDS not in text and "zebra" not in text
    assert TEST_KEY not in text and "sk-upstream-secret-value" not in text
