#!/usr/bin/env python3
"""Local-model throughput through keel's HTTP API (standard library only).

Usage: local_bench.py --base http://127.0.0.1:PORT [--chat-model default]
                      [--embed-model text-embedding-3-small] [--out results.json]

Chat (streaming, temperature 0, max_tokens 64, a ~300-token prompt that differs per request):
  prefill tok/s = prompt_tokens / time-to-first-token
  decode  tok/s = (completion_tokens - 1) / (total time - time-to-first-token)
  at concurrency 1 and 4; at 4 also aggregate output tok/s = all completion tokens / wall time.
Embeddings: passages/s for single-passage requests at concurrency 1 and 16, and for requests
carrying 32 passages each at concurrency 1. Every phase is bounded in requests and time.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

WORDS = (
    "the operator reads the request log every morning and checks which answers were escalated "
    "to a reviewer because the gateway found a claim that its retrieved sources did not support "
    "while latency budgets stay tight and every tenant expects the same behaviour as the public api"
).split()


def prompt(i, n_words=230):
    # ~230 English words is about 300 tokens for a BPE tokenizer; the request index goes first
    # so no two prompts share a prefix.
    body = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(n_words))
    return f"Request {i}. Summarise the following notes in one sentence.\n\n{body}"


def passage(i):
    return " ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(24)) + f" (passage {i})"


class Client:
    def __init__(self, base, timeout=300):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def post(self, path, obj):
        body = json.dumps(obj).encode()
        for attempt in range(2):
            try:
                c = self._conn()
                c.request("POST", path, body=body, headers={"content-type": "application/json"})
                return c.getresponse()
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def get_json(self, path):
        c = self._conn()
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")


def chat_once(client, model, i, max_tokens):
    req = {
        "model": model,
        "messages": [{"role": "user", "content": prompt(i)}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    r = client.post("/v1/chat/completions", req)
    if r.status != 200:
        raise RuntimeError(f"chat HTTP {r.status}: {r.read()[:300]!r}")
    ttft, usage, pieces = None, None, 0
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        for ch in ev.get("choices") or []:
            if (ch.get("delta") or {}).get("content"):
                pieces += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
        if ev.get("usage"):
            usage = ev["usage"]
    r.read()
    total = time.perf_counter() - t0
    if usage is None:
        raise RuntimeError("stream ended without a usage chunk (stream_options.include_usage)")
    if ttft is None:
        ttft = total
    pt, ct = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {
        "ttft": ttft,
        "total": total,
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "content_chunks": pieces,
        "prefill_tps": pt / ttft if ttft > 0 else None,
        "decode_tps": (ct - 1) / (total - ttft) if ct > 1 and total > ttft else None,
    }


def run_parallel(conc, n_total, fn, deadline_s):
    """Run fn(client, i) for i in range(n_total) on `conc` threads; stop starting new ones
    after deadline_s. Returns (results, errors, wall)."""
    results, errors, lock = [], [], threading.Lock()
    counter = iter(range(n_total))
    t0 = time.perf_counter()

    def worker():
        client = Client(ARGS.base)
        while time.perf_counter() - t0 < deadline_s:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                res = fn(client, i)
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - recorded and reported
                with lock:
                    errors.append(str(e)[:300])
                client.conn = None

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors, time.perf_counter() - t0


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def chat_phase(model, conc, n, max_tokens, deadline):
    res, errs, wall = run_parallel(conc, n, lambda c, i: chat_once(c, model, 1000 * conc + i, max_tokens), deadline)
    return {
        "concurrency": conc,
        "requests": len(res),
        "errors": errs,
        "wall_s": wall,
        "prompt_tokens_median": med([r["prompt_tokens"] for r in res]),
        "completion_tokens_total": sum(r["completion_tokens"] for r in res),
        "ttft_median_s": med([r["ttft"] for r in res]),
        "prefill_tps_median": med([r["prefill_tps"] for r in res]),
        "decode_tps_median": med([r["decode_tps"] for r in res]),
        "aggregate_output_tps": sum(r["completion_tokens"] for r in res) / wall if wall else None,
        "runs": res,
    }


def embed_phase(model, conc, per_request, duration):
    def one(client, i):
        inp = passage(i) if per_request == 1 else [passage(i * per_request + k) for k in range(per_request)]
        r = client.post("/v1/embeddings", {"model": model, "input": inp})
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"embeddings HTTP {r.status}: {body[:300]!r}")
        n = len(json.loads(body)["data"])
        if n != per_request:
            raise RuntimeError(f"asked for {per_request} embeddings, got {n}")
        return n

    res, errs, wall = run_parallel(conc, 10**9, one, duration)
    return {
        "concurrency": conc,
        "passages_per_request": per_request,
        "requests": len(res),
        "errors": errs,
        "wall_s": wall,
        "passages_per_s": sum(res) / wall if wall else None,
        "requests_per_s": len(res) / wall if wall else None,
    }


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--chat-model", default="default")
    ap.add_argument("--embed-model", default="text-embedding-3-small")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--chat-n1", type=int, default=5, help="requests at concurrency 1")
    ap.add_argument("--chat-n4", type=int, default=8, help="requests at concurrency 4")
    ap.add_argument("--chat-deadline", type=float, default=150.0, help="seconds per chat phase")
    ap.add_argument("--embed-duration", type=float, default=10.0, help="seconds per embeddings phase")
    ap.add_argument("--out")
    ARGS = ap.parse_args()

    client = Client(ARGS.base)
    status, models = client.get_json("/v1/models")
    ids = [m.get("id") for m in (models or {}).get("data", [])]
    print(f"models: {ids}", file=sys.stderr)

    out = {"chat_model": ARGS.chat_model, "embed_model": ARGS.embed_model, "models": ids}
    print("chat warm-up", file=sys.stderr)
    warm = chat_once(client, ARGS.chat_model, 0, 8)
    out["chat_warmup"] = warm
    out["chat"] = []
    for conc, n in ((1, ARGS.chat_n1), (4, ARGS.chat_n4)):
        print(f"chat c={conc} n={n}", file=sys.stderr)
        ph = chat_phase(ARGS.chat_model, conc, n, ARGS.max_tokens, ARGS.chat_deadline)
        print(f"  ttft={fmt(ph['ttft_median_s'], 3)}s prefill={fmt(ph['prefill_tps_median'])} tok/s "
              f"decode={fmt(ph['decode_tps_median'])} tok/s aggregate={fmt(ph['aggregate_output_tps'])} tok/s "
              f"errors={len(ph['errors'])}", file=sys.stderr)
        out["chat"].append(ph)

    print("embeddings warm-up", file=sys.stderr)
    embed_phase(ARGS.embed_model, 1, 1, 2.0)
    out["embeddings"] = []
    for conc, per in ((1, 1), (16, 1), (1, 32)):
        print(f"embeddings c={conc} passages/request={per}", file=sys.stderr)
        ph = embed_phase(ARGS.embed_model, conc, per, ARGS.embed_duration)
        print(f"  {fmt(ph['passages_per_s'])} passages/s over {ph['requests']} requests, errors={len(ph['errors'])}",
              file=sys.stderr)
        out["embeddings"].append(ph)

    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(out, f, indent=1)

    w = print
    w(f"Chat model `{ARGS.chat_model}`: streaming, temperature 0, max_tokens {ARGS.max_tokens}, "
      f"prompt ≈ {fmt(out['chat'][0]['prompt_tokens_median'], 0)} tokens (each request's prompt differs).")
    w("")
    w("| concurrency | requests (errors) | median TTFT s | median prefill tok/s | median decode tok/s per stream | aggregate output tok/s |")
    w("|---:|---:|---:|---:|---:|---:|")
    for ph in out["chat"]:
        w(f"| {ph['concurrency']} | {ph['requests']} ({len(ph['errors'])}) | {fmt(ph['ttft_median_s'], 3)} | "
          f"{fmt(ph['prefill_tps_median'])} | {fmt(ph['decode_tps_median'])} | {fmt(ph['aggregate_output_tps'])} |")
    w("")
    w(f"Embeddings model `{ARGS.embed_model}`, {fmt(ARGS.embed_duration, 0)} s per row, passages of ~30 words.")
    w("")
    w("| concurrency | passages per request | requests (errors) | passages/s | requests/s |")
    w("|---:|---:|---:|---:|---:|")
    for ph in out["embeddings"]:
        w(f"| {ph['concurrency']} | {ph['passages_per_request']} | {ph['requests']} ({len(ph['errors'])}) | "
          f"{fmt(ph['passages_per_s'])} | {fmt(ph['requests_per_s'])} |")
    errs = [e for ph in out["chat"] + out["embeddings"] for e in ph["errors"]]
    if errs:
        w("")
        w(f"Errors ({len(errs)}), first: `{errs[0]}`")


ARGS = None
if __name__ == "__main__":
    main()
