"""The peer's matching cost: face_recognition.face_distance of one new encoding against N
stored ones (numpy, float64, as the seed's worker compares), median of repeated runs.

    python match_scale.py 10000 100000 1000000     (MATCH_REPEATS=5 for fewer runs)

This is the peer's best case: its worker also reads every stored encoding from Redis for each
image, which is not timed here. Prints one JSON line per size.
"""

import json
import os
import sys
import time

import face_recognition
import numpy as np


def main(sizes, repeats=20):
    rng = np.random.default_rng(7)
    for n in sizes:
        # Random descriptors on the scale of real ones, as perf's index-search makes them.
        known = (rng.random((n, 128)) - 0.5) * 0.3
        new = (rng.random(128) - 0.5) * 0.3
        face_recognition.face_distance(known, new)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            distances = face_recognition.face_distance(known, new)
            _ = np.nonzero(distances <= 0.6)
            times.append(time.perf_counter() - t)
        times.sort()
        print(json.dumps({"system": "peer", "stored": n, "one_face_ms": times[len(times) // 2] * 1e3}))
        del known


if __name__ == "__main__":
    main(
        [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000],
        int(os.environ.get("MATCH_REPEATS", "20")),
    )
