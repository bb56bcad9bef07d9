"""The keel binary's other commands: ask (one request through the same pipeline,
in-process), config validate (non-zero naming the path), and the loopback-without-keys rule."""

import subprocess

from conftest import KEEL_BIN, free_port, keel_config


def run(*args, timeout=300):
    return subprocess.run([KEEL_BIN, *args], capture_output=True, text=True, timeout=timeout)


def test_ask_prints_answer_model_tokens_and_latency(mock_upstream, workdir):
    cfg = workdir / "ask.toml"
    cfg.write_text(keel_config(mock_upstream, workdir / "ask.db", f"127.0.0.1:{free_port()}"))
    r = run("ask", "--config", str(cfg), "--model", "fallback", "hello from ask")
    assert r.returncode == 0, r.stderr
    assert "hello from ask" in r.stdout
    assert "model: mock-gpt" in r.stderr
    assert "tokens:" in r.stderr and "latency:" in r.stderr


def test_ask_on_the_local_model(workdir):
    r = run("ask", "--max-tokens", "8", "--temperature", "0", "What is 2+2?")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert "model: smollm2" in r.stderr
    assert "out" in r.stderr


def test_config_validate_names_the_failing_path(workdir, mock_upstream):
    good = workdir / "good.toml"
    good.write_text(keel_config(mock_upstream, workdir / "v.db", "127.0.0.1:1"))
    ok = run("config", "validate", str(good))
    assert ok.returncode == 0, ok.stderr
    bad = workdir / "bad.toml"
    bad.write_text(good.read_text().replace('models = ["dead-gpt", "mock-gpt"]', 'models = ["dead-gpt", "x"]'))
    r = run("config", "validate", str(bad))
    assert r.returncode != 0
    assert 'routes.fallback.models[1]: unknown model "x"' in r.stderr


def test_the_shipped_default_config_validates():
    r = run("config", "validate", "config/keel.toml")
    assert r.returncode == 0, r.stderr


def test_keyless_keel_refuses_a_public_address():
    r = run("serve", "--listen", f"0.0.0.0:{free_port()}", timeout=60)
    assert r.returncode != 0
    assert "without API keys" in r.stderr


def test_keys_new_prints_a_key_and_its_hash_only():
    import hashlib

    r = run("keys", "new", "--tenant", "acme")
    assert r.returncode == 0
    key = r.stdout.split("): ", 1)[1].split()[0]
    assert key.startswith("sk-keel-")
    assert f'sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"' in r.stdout
    assert 'tenant = "acme"' in r.stdout
