"""The request log as operators rely on it: every request (failed ones too) lands in the
store with attempts, tokens, cost and latency, and SIGTERM drains an in-flight stream and
flushes the log before exit. Runs its own keel so it can stop it."""

import sqlite3
import threading
import time

import httpx
import openai
import pytest

from conftest import OTHER_TENANT_KEY, TEST_KEY, start_keel, stop


@pytest.fixture()
def own_keel(mock_upstream, workdir):
    server = start_keel(mock_upstream, workdir, name=f"keel-log-{time.time_ns()}")
    yield server
    stop(server.proc)


def rows(db):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        reqs = [dict(r) for r in con.execute("SELECT * FROM request_log ORDER BY started_at_ms, id")]
        atts = [dict(r) for r in con.execute("SELECT * FROM request_attempts ORDER BY request_id, idx")]
    finally:
        con.close()
    return reqs, atts


def test_sigterm_drains_a_stream_and_flushes_every_record(own_keel):
    client = openai.OpenAI(base_url=f"{own_keel.base}/v1", api_key=TEST_KEY, max_retries=0)
    other = openai.OpenAI(base_url=f"{own_keel.base}/v1", api_key=OTHER_TENANT_KEY, max_retries=0)

    ok = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=[{"role": "user", "content": "count me"}])
    ok_id = ok.headers["x-request-id"]
    fb = client.chat.completions.create(model="fallback", messages=[{"role": "user", "content": "fb"}])
    assert fb.model == "mock-gpt"
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    bad = httpx.post(f"{own_keel.base}/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {TEST_KEY}"})
    assert bad.status_code == 400
    unauth = httpx.get(f"{own_keel.base}/v1/models", headers={"Authorization": "Bearer nope"})
    assert unauth.status_code == 401

    # A local-model stream is in flight when SIGTERM arrives; it must complete.
    result = {}

    def stream_it():
        s = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Tell me about the sea."}],
            max_tokens=40, temperature=0, stream=True, stream_options={"include_usage": True},
        )
        text, usage = [], None
        for chunk in s:
            if chunk.usage:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
        result["text"], result["usage"] = "".join(text), usage

    t = threading.Thread(target=stream_it)
    t.start()
    time.sleep(0.5)
    code = stop(own_keel.proc)
    t.join(timeout=60)
    assert code == 0, own_keel.log()[-2000:]
    assert result.get("usage") is not None, "the in-flight stream was cut instead of drained"
    assert result["usage"].completion_tokens == 40 or result["text"]

    reqs, atts = rows(own_keel.db)
    by_status = {}
    for r in reqs:
        by_status.setdefault(r["status"], []).append(r)
    assert len(reqs) == 6, [(r["endpoint"], r["status"], r["error_class"]) for r in reqs]
    ok_row = next(r for r in reqs if r["id"] == ok_id)
    assert ok_row["tenant"] == "acme" and ok_row["key_id"] == "test-key"
    assert ok_row["route"] == "mock-gpt" and ok_row["status"] == 200
    assert ok_row["input_tokens"] > 0 and ok_row["output_tokens"] > 0
    # mock-gpt costs $1/M in and $2/M out
    expected = (ok_row["input_tokens"] * 1.0 + ok_row["output_tokens"] * 2.0) / 1e6
    assert abs(ok_row["cost_usd"] - expected) < 1e-12
    assert ok_row["total_ms"] > 0
    fb_row = next(r for r in reqs if r["route"] == "fallback")
    fb_atts = [a for a in atts if a["request_id"] == fb_row["id"]]
    assert [a["outcome"] for a in fb_atts] == ["connect", "ok"]
    assert [a["model"] for a in fb_atts] == ["dead-gpt", "mock-gpt"]
    nf = by_status[404][0]
    assert nf["tenant"] == "globex" and nf["error_class"] == "model_not_found"
    assert by_status[400][0]["error_class"] == "invalid_json"
    assert by_status[401][0]["error_class"] == "invalid_api_key"
    stream_row = next(r for r in reqs if r["stream"] == 1)
    assert stream_row["status"] == 200 and stream_row["error_class"] is None
    assert stream_row["ttft_ms"] is not None and 0 < stream_row["ttft_ms"] <= stream_row["total_ms"]
    assert stream_row["output_tokens"] == result["usage"].completion_tokens
