"""`mla serve` end to end over loopback with a real HTTP client: OpenAI endpoints (JSON and
server-sent events), greedy output equal to recomputing the sequence with `mla forward`,
concurrent == alone, prefix cache on == off, a client that disconnects frees its sequence,
finish reasons, the queue limit (429), API keys (401) and every kind of bad input (4xx with an
error object, the server still serving)."""
import json
import os
import re
import sys
import threading
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import serving_model  # noqa: E402


from mla_cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return serving_model.write_model(str(tmp_path_factory.mktemp("served")))


@pytest.fixture(scope="module")
def server(model):
    s = serving_model.Server(cli(), model[0], "--threads", "1", "--max-batch", "8",
                             "--cache-tokens", "4096", "--prefill-chunk", "16")
    yield s
    assert s.close() == 0


def post(server, path, body, **kw):
    return requests.post(server.url + path, json=body, timeout=60, **kw)


def complete(server, prompt, **fields):
    r = post(server, "/v1/completions", {"prompt": prompt, "temperature": 0, **fields})
    assert r.status_code == 200, r.text
    return r.json()


def stream_events(server, path, body):
    r = requests.post(server.url + path, json=dict(body, stream=True), stream=True, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for raw in r.iter_lines():
        line = raw.decode("utf-8")
        if line:
            assert line.startswith("data: "), line
            events.append(line[len("data: "):])
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_health_and_models(server):
    assert requests.get(server.url + "/health", timeout=10).json() == {"status": "ok"}
    models = requests.get(server.url + "/v1/models", timeout=10).json()
    assert models["object"] == "list" and models["data"][0]["object"] == "model"


def test_greedy_completion_equals_recomputing(server, model, tmp_path):
    model_dir, _, _, eos = model
    r = complete(server, "the cat sat on", max_tokens=6)
    want = serving_model.greedy_by_recompute(cli(), model_dir, "the cat sat on", 6, eos, str(tmp_path))
    assert r["choices"][0]["text"] == serving_model.detokenize(cli(), model_dir, want).rstrip("\n")
    assert r["usage"]["completion_tokens"] == len(want) + (0 if len(want) == 6 else 1)
    assert r["choices"][0]["finish_reason"] == ("length" if len(want) == 6 else "stop")
    assert r["object"] == "text_completion"


def test_stream_equals_non_stream(server):
    body = {"prompt": "in the beginning", "temperature": 0, "max_tokens": 12}
    full = complete(server, **body)
    events = stream_events(server, "/v1/completions",
                           dict(body, stream_options={"include_usage": True}))
    text = "".join(e["choices"][0]["text"] for e in events if e["choices"])
    assert text == full["choices"][0]["text"]
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == \
        full["choices"][0]["finish_reason"]
    assert events[-1]["usage"] == full["usage"]


def test_chat_stream_equals_non_stream(server):
    body = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Hello there"}],
            "temperature": 0, "max_tokens": 10}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    full = r.json()
    assert full["object"] == "chat.completion"
    assert full["choices"][0]["message"]["role"] == "assistant"
    events = stream_events(server, "/v1/chat/completions", body)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text == full["choices"][0]["message"]["content"]
    assert all(e["object"] == "chat.completion.chunk" for e in events)


def test_concurrent_equals_alone(server):
    prompts = [f"request number {i} says" + " more" * (i % 4) for i in range(10)]
    alone = [complete(server, p, max_tokens=8)["choices"][0]["text"] for p in prompts]
    results = [None] * len(prompts)

    def run(i):
        results[i] = complete(server, prompts[i], max_tokens=8)["choices"][0]["text"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == alone


def metric(server, name):
    text = requests.get(server.url + "/metrics", timeout=10).text
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, flags=re.M)
    assert m, name + " missing from /metrics"
    return float(m.group(1))


def test_prefix_cache_gives_identical_outputs(model, server):
    system = "You are a careful assistant who answers in the style of an old play. " * 3
    chats = [{"messages": [{"role": "system", "content": system},
                           {"role": "user", "content": q}], "temperature": 0, "max_tokens": 6}
             for q in ["Who are you", "What is the hour", "Where is the king"]]
    hits_before = metric(server, "mla_prefix_cache_hit_tokens_total")
    with_cache = [post(server, "/v1/chat/completions", c).json()["choices"][0]["message"]
                  for c in chats]
    assert metric(server, "mla_prefix_cache_hit_tokens_total") > hits_before + 30
    plain = serving_model.Server(cli(), model[0], "--threads", "1", "--prefix-cache", "0")
    try:
        without = [post(plain, "/v1/chat/completions", c).json()["choices"][0]["message"]
                   for c in chats]
        assert metric(plain, "mla_prefix_cache_hit_tokens_total") == 0
    finally:
        plain.close()
    assert with_cache == without


def test_quantized_cache_with_prefix_sharing(model):
    """--cache-dtype int8 / fp8: shared (forked, copy-on-write) pages of quantized rows give the
    outputs an unshared cache gives."""
    system = "You are a careful assistant who answers in the style of an old play. " * 3
    chats = [{"messages": [{"role": "system", "content": system},
                           {"role": "user", "content": q}], "temperature": 0, "max_tokens": 6}
             for q in ["Who are you", "What is the hour"]]
    for dtype in ("int8", "fp8"):
        outputs = []
        for prefix in ("32", "0"):
            s = serving_model.Server(cli(), model[0], "--threads", "1", "--cache-dtype", dtype,
                                     "--prefix-cache", prefix)
            try:
                outputs.append([post(s, "/v1/chat/completions", c).json()["choices"][0]["message"]
                                for c in chats])
                hits = metric(s, "mla_prefix_cache_hit_tokens_total")
                assert (hits > 30) if prefix == "32" else (hits == 0)
            finally:
                s.close()
        assert outputs[0] == outputs[1], dtype


def test_disconnect_frees_the_sequence(tmp_path):
    # A long context, so the stream is still running when the client leaves.
    long_model = serving_model.write_model(str(tmp_path / "long"), max_positions=20000)[0]
    s = serving_model.Server(cli(), long_model, "--threads", "1", "--prefix-cache", "0",
                             "--cache-tokens", "20000")
    try:
        used = metric(s, "mla_cache_pages_used")
        r = requests.post(s.url + "/v1/completions",
                          json={"prompt": "tell a long story", "max_tokens": 19000,
                                "temperature": 0, "stream": True},
                          stream=True, timeout=60)
        lines = r.iter_lines(chunk_size=1)
        next(lines)
        assert metric(s, "mla_running_requests") == 1
        r.close()  # the client goes away mid-stream
        deadline = time.time() + 30
        while time.time() < deadline and (metric(s, "mla_running_requests") != 0 or
                                          metric(s, "mla_cache_pages_used") != used):
            time.sleep(0.05)
        assert metric(s, "mla_running_requests") == 0
        assert metric(s, "mla_cache_pages_used") == used
        assert metric(s, "mla_generated_tokens_total") < 19000
    finally:
        s.close()


def test_max_tokens_and_stop_strings(server):
    long = complete(server, "once upon a time", max_tokens=16)
    text = long["choices"][0]["text"]
    assert long["choices"][0]["finish_reason"] in ("length", "stop")
    if long["choices"][0]["finish_reason"] == "length" and len(text) > 6:
        stop = text[3:5]
        cut = complete(server, "once upon a time", max_tokens=16, stop=[stop])
        assert cut["choices"][0]["finish_reason"] == "stop"
        assert cut["choices"][0]["text"] == text[: text.index(stop)]
    short = complete(server, "once upon a time", max_tokens=2)
    assert short["usage"]["completion_tokens"] <= 2


def test_queue_limit_gives_429(model):
    # One running request and one waiting at most: of 8 arriving together, most are refused.
    s = serving_model.Server(cli(), model[0], "--threads", "1", "--max-batch", "1",
                             "--max-queue", "0")
    try:
        results = []
        barrier = threading.Barrier(8)

        def run():
            barrier.wait()
            r = post(s, "/v1/completions", {"prompt": "b", "max_tokens": 200,
                                            "temperature": 0})
            results.append((r.status_code, r.json()))

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = [st for st, _ in results]
        assert 429 in statuses and 200 in statuses
        assert set(statuses) <= {200, 429}
        refused = [b for st, b in results if st == 429]
        assert all(b["error"]["type"] == "rate_limit_exceeded" for b in refused)
        done = [b["choices"][0]["text"] for st, b in results if st == 200]
        assert len(set(done)) == 1  # the same greedy answer for each that ran
        assert post(s, "/v1/completions", {"prompt": "b", "max_tokens": 2}).status_code == 200
    finally:
        s.close()


def test_api_key(model):
    s = serving_model.Server(cli(), model[0], "--threads", "1", "--api-key", "sekret")
    try:
        r = post(s, "/v1/completions", {"prompt": "a", "max_tokens": 1})
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
        r = post(s, "/v1/completions", {"prompt": "a", "max_tokens": 1},
                 headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = post(s, "/v1/completions", {"prompt": "a", "max_tokens": 1},
                 headers={"Authorization": "Bearer sekret"})
        assert r.status_code == 200
        assert requests.get(s.url + "/health", timeout=10).status_code == 200
    finally:
        s.close()


@pytest.mark.parametrize("path,body,status,param", [
    ("/v1/completions", b"{not json", 400, None),
    ("/v1/completions", b'{"prompt": 5}', 400, "prompt"),
    ("/v1/completions", b'{"prompt": "a", "colour": "red"}', 400, "colour"),
    ("/v1/completions", b'{"prompt": ""}', 400, "prompt"),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": 100000}', 400, "max_tokens"),
    ("/v1/completions", b'{"prompt": "a", "temperature": -1}', 400, "temperature"),
    ("/v1/completions", b'{"prompt": "\xff\xfe"}', 400, None),
    ("/v1/chat/completions", b'{"messages": "hi"}', 400, "messages"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user"}]}', 400, "messages[0].content"),
    ("/v1/completions", b'{"prompt": "a", "model": "gpt-4"}', 404, "model"),
    ("/v1/nothing", b"{}", 404, None),
])
def test_bad_input_gets_an_error_object(server, path, body, status, param):
    r = requests.post(server.url + path, data=body, timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"]
    assert err["param"] == param
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_too_long_prompt_and_huge_body(server):
    r = post(server, "/v1/completions", {"prompt": "word " * 600, "max_tokens": 1})
    assert r.status_code == 400 and "context" in r.json()["error"]["message"]
    r = requests.post(server.url + "/v1/completions", data=b"x" * (5 << 20), timeout=60,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert requests.get(server.url + "/health", timeout=10).status_code == 200


def test_metrics_are_prometheus_text(server):
    complete(server, "count me", max_tokens=2)
    text = requests.get(server.url + "/metrics", timeout=10).text
    for name in ["mla_requests_total", "mla_generated_tokens_total", "mla_queue_depth",
                 "mla_cache_pages_used", "mla_cache_pages_free", "mla_batch_size",
                 "mla_time_to_first_token_seconds_bucket", "mla_inter_token_latency_seconds_count"]:
        assert name in text, name
    assert metric(server, "mla_time_to_first_token_seconds_count") >= 1
