"""Routing strategies seen through the official OpenAI SDK: a cost route picks the cheaper
model, `extra_body={"keel": {"route": ...}}` preferences reorder or narrow it (and never reach
the upstream), bad preferences are 400s naming the field, and the request log records which
model answered and why."""

import sqlite3
import time

import openai
import pytest

from conftest import TEST_KEY, start_keel, stop

ROUTES = """
[models.mock-cheap]
provider = "mock"
upstream = "gpt-cheap"
input_price_per_mtok = 0.1
output_price_per_mtok = 0.2
capabilities = ["chat", "stream"]

[routes.priced]
models = ["mock-gpt", "mock-cheap"]
strategy = "cost"
retry = { max_retries = 0 }
"""

MSG = [{"role": "user", "content": "route me"}]


@pytest.fixture()
def routed_keel(mock_upstream, workdir):
    server = start_keel(mock_upstream, workdir, name=f"keel-route-{time.time_ns()}", extra=ROUTES)
    yield server
    stop(server.proc)


def record(db, request_id):
    for _ in range(100):
        con = sqlite3.connect(db)
        con.row_factory = sqlite3.Row
        try:
            row = con.execute("SELECT * FROM request_log WHERE id = ?", (request_id,)).fetchone()
        finally:
            con.close()
        if row is not None:
            return dict(row)
        time.sleep(0.05)
    raise AssertionError(f"no record for {request_id}")


def test_cost_route_and_extra_body_preferences(routed_keel):
    client = openai.OpenAI(base_url=f"{routed_keel.base}/v1", api_key=TEST_KEY, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(model="priced", messages=MSG)
    resp = raw.parse()
    assert resp.model == "mock-cheap"
    routing = resp.model_extra["keel"]["routing"]
    assert routing["strategy"] == "cost"
    assert routing["reason"].startswith("cost: mock-cheap is the cheapest capable model")
    assert raw.headers["x-keel-route-reason"] == routing["reason"]
    rec = record(routed_keel.db, raw.headers["x-request-id"])
    assert rec["model_served"] == "mock-cheap"
    assert rec["route_reason"] == routing["reason"]

    raw = client.chat.completions.with_raw_response.create(
        model="priced", messages=MSG, extra_body={"keel": {"route": {"order": ["mock-gpt"]}}}
    )
    resp = raw.parse()
    assert resp.model == "mock-gpt"
    assert resp.model_extra["keel"]["routing"]["preferences"] == {"order": ["mock-gpt"]}
    assert resp.model_extra["keel"]["routing"]["reason"].endswith("request preferences order=[mock-gpt]")
    rec = record(routed_keel.db, raw.headers["x-request-id"])
    assert rec["model_served"] == "mock-gpt"

    stream = client.chat.completions.with_raw_response.create(
        model="priced", messages=MSG, stream=True, extra_body={"keel": {"route": {"only": ["mock-gpt"]}}}
    )
    assert stream.headers["x-keel-model"] == "mock-gpt"
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == "echo: route me"


def test_bad_preferences_are_400s_naming_the_field(routed_keel):
    client = openai.OpenAI(base_url=f"{routed_keel.base}/v1", api_key=TEST_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="priced", messages=MSG, extra_body={"keel": {"route": {"only": ["gpt-5"]}}}
        )
    assert e.value.param == "keel.route.only[0]"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="priced", messages=MSG, extra_body={"keel": {"route": {"sort": "vibes"}}}
        )
    assert e.value.param == "keel.route"
