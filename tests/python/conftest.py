"""End-to-end fixtures: a real keel binary and a mock upstream, driven by the official SDKs.

Binaries come from KEEL_BIN / KEEL_MOCK_BIN (scripts/test.sh sets them after building)."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_KEY = "sk-keel-test-0123456789"
OTHER_TENANT_KEY = "sk-keel-test-other-tenant"


def _target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


KEEL_BIN = os.environ.get("KEEL_BIN", str(_target_dir() / "release" / "keel"))
MOCK_BIN = os.environ.get("KEEL_MOCK_BIN", str(_target_dir() / "release" / "keel-mock-upstream"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def keel_config(mock_url: str, db_path: Path, listen: str, extra: str = "") -> str:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    return f"""
[server]
listen = "{listen}"
max_body_bytes = 65536
shutdown_grace = "120s"

[[auth.keys]]
id = "test-key"
tenant = "acme"
sha256 = "{sha256(TEST_KEY)}"

[[auth.keys]]
id = "other-key"
tenant = "globex"
sha256 = "{sha256(OTHER_TENANT_KEY)}"

[store]
kind = "sqlite"
path = "{db_path}"
flush_interval = "50ms"

[providers.local]
kind = "local"

[providers.mock]
kind = "openai_compat"
base_url = "{mock_url}"
api_key_env = "KEEL_TEST_MOCK_KEY"
timeout = "5s"

[providers.mock-anthropic]
kind = "anthropic"
base_url = "{mock_url}"
timeout = "5s"

[providers.dead]
kind = "openai_compat"
base_url = "{dead}"
timeout = "2s"
connect_timeout = "1s"

[models.smollm2]
provider = "local"
upstream = "chat"
context_window = 4096
capabilities = ["chat", "stream"]

[models.minilm]
provider = "local"
upstream = "embeddings"
capabilities = ["embeddings"]

[models.minilm-int8]
provider = "local"
upstream = "embeddings-int8"
capabilities = ["embeddings"]

[models.mock-gpt]
provider = "mock"
upstream = "gpt-mock"
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
capabilities = ["chat", "stream", "tools", "json_mode", "embeddings"]

[models.mock-claude]
provider = "mock-anthropic"
upstream = "claude-mock"
capabilities = ["chat", "stream", "tools"]

[models.dead-gpt]
provider = "dead"
upstream = "gpt-dead"
capabilities = ["chat", "stream"]

[routes.default]
models = ["smollm2"]

[routes.fallback]
models = ["dead-gpt", "mock-gpt"]
retry = {{ max_retries = 0 }}

[routes.broken]
models = ["dead-gpt"]
retry = {{ max_retries = 0 }}
""" + extra


class Server:
    def __init__(self, proc, base, db, log_path):
        self.proc, self.base, self.db, self.log_path = proc, base, db, log_path

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")


def start_keel(mock_url: str, workdir: Path, name: str = "keel", extra: str = "") -> Server:
    port = free_port()
    db = workdir / f"{name}.db"
    cfg = workdir / f"{name}.toml"
    cfg.write_text(keel_config(mock_url, db, f"127.0.0.1:{port}", extra))
    log_path = workdir / f"{name}.log"
    env = dict(os.environ, KEEL_TEST_MOCK_KEY="sk-upstream-secret-value", RUST_LOG="info")
    proc = subprocess.Popen(
        [KEEL_BIN, "serve", "--config", str(cfg)],
        stdout=open(log_path, "w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", 600, proc)
    return Server(proc, base, db, log_path)


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="keel-e2e-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mock_upstream():
    port = free_port()
    proc = subprocess.Popen([MOCK_BIN, "--listen", f"127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/v1/models", 30, proc)
    yield f"{base}/v1"
    stop(proc)


@pytest.fixture(scope="session")
def keel(mock_upstream, workdir):
    server = start_keel(mock_upstream, workdir)
    yield server
    code = stop(server.proc)
    assert code == 0, f"keel exited with {code}:\n{server.log()[-3000:]}"


@pytest.fixture()
def client(keel):
    from openai import OpenAI

    return OpenAI(base_url=f"{keel.base}/v1", api_key=TEST_KEY, max_retries=0, timeout=120)
