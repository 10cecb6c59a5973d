"""numpy float32 matmul (OpenBLAS) on the shapes `mola-bench gemm` measures; thread count
from OPENBLAS_NUM_THREADS, set by the caller. One JSON object per shape, best of --repeat."""
import argparse, json, os, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--shapes", required=True, help="m,n,k,transA,transB;...")
p.add_argument("--repeat", type=int, default=5)
a = p.parse_args()
rng = np.random.default_rng(0)
for spec in a.shapes.split(";"):
    m, n, k, ta, tb = (int(x) for x in spec.split(","))
    A = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    B = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    opA, opB = (A.T if ta else A), (B.T if tb else B)
    C = np.empty((m, n), np.float32)
    np.matmul(opA, opB, out=C)
    reps = max(1, int(2e8 / (2 * m * n * k)))  # ~0.1 s or more per timing
    best = float("inf")
    for _ in range(a.repeat):
        t = time.perf_counter()
        for _ in range(reps):
            np.matmul(opA, opB, out=C)
        best = min(best, (time.perf_counter() - t) / reps)
    print(json.dumps({"impl": "numpy-openblas", "m": m, "n": n, "k": k, "trans_a": bool(ta), "trans_b": bool(tb),
                      "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0")),
                      "seconds": best, "gflops": round(2 * m * n * k / best / 1e9, 1)}), flush=True)
