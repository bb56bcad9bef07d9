"""Embedding throughput of sentence-transformers (PyTorch, CPU) with all-MiniLM-L6-v2 loaded
from keel's model cache, on the texts of a file (one JSON string per line), in batches of 32
and one at a time, with as many torch threads as keel uses cores. Prints one JSON line per
setting, like keel's embed_throughput bench. Also prints the largest absolute difference
between its vectors and keel's for the first texts when given keel's vectors (not used yet).
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

texts_path, model_dir = sys.argv[1], sys.argv[2]
threads = int(os.environ.get("THREADS", os.cpu_count() or 2))
torch.set_num_threads(threads)
texts = [json.loads(line) for line in open(texts_path, encoding="utf-8")]
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:32], batch_size=32)
for batch in (32, 1):
    n = len(texts) if batch == 32 else min(len(texts), 200)
    t = time.perf_counter()
    model.encode(texts[:n], batch_size=batch, normalize_embeddings=True)
    secs = time.perf_counter() - t
    print(json.dumps({"impl": f"sentence-transformers {__import__('sentence_transformers').__version__} (torch {torch.__version__}, {threads} threads)",
                      "batch": batch, "passages": n, "seconds": secs, "passages_per_s": n / secs}))
