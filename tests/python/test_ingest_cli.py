"""`keel ingest`: a directory of documents into a tenant's collection in-process (real MiniLM),
with a summary that names each failure; a second run finds them unchanged; a server over the
same directory searches what the CLI ingested."""

import subprocess

import httpx

from conftest import KEEL_BIN, TEST_KEY, free_port, keel_config, start_keel, stop


def test_ingest_a_directory_then_search_it_over_http(mock_upstream, workdir):
    home = workdir / "ingest-cli"
    docs = home / "handbook"
    (docs / "deck").mkdir(parents=True)
    (docs / "guide.md").write_text("# Guide\n\n## Anchoring\n\nDrop the anchor in sand, never on coral.\n")
    (docs / "deck" / "knots.txt").write_text("A bowline makes a loop that does not slip.\n")
    (docs / "deck" / "empty.md").write_text("   \n")
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    extra = f'\n[retrieval]\ndir = "{home / "collections"}"\nembedding_model = "minilm"\n'
    cfg = home / "keel.toml"
    cfg.write_text(keel_config(mock_upstream, home / "keel.db", f"127.0.0.1:{free_port()}", extra))

    run = lambda: subprocess.run(  # noqa: E731
        [KEEL_BIN, "ingest", "manual", str(docs), "--config", str(cfg), "--tenant", "acme"],
        capture_output=True, text=True, timeout=600,
    )
    first = run()
    assert first.returncode != 0, "a failed document makes the exit code non-zero"
    assert "2 added, 0 updated, 0 unchanged, 1 failed" in first.stdout, first.stdout + first.stderr
    assert "empty.md" in first.stdout and "[empty]" in first.stdout
    assert "ignored.bin" not in first.stdout, "directories are walked for documents only"

    (docs / "deck" / "empty.md").unlink()
    second = run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 added, 0 updated, 2 unchanged, 0 failed (0 chunks embedded" in second.stdout

    server = start_keel(mock_upstream, home, name="ingested", extra=extra)
    try:
        r = httpx.post(
            f"{server.base}/v1/collections/manual/search",
            headers={"authorization": f"Bearer {TEST_KEY}"},
            json={"query": "which knot makes a loop", "top_k": 1},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        hit = r.json()["data"][0]
        assert hit["document_id"].endswith("knots.txt")
        assert "bowline" in hit["text"]
    finally:
        stop(server.proc)
