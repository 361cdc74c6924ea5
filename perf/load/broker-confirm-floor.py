"""The broker's own confirm latency, with no facematch code in the way.

Publishes persistent messages one at a time with publisher confirms (pika), each waiting for
its confirm, to a queue of its own that it deletes afterwards, and prints p50/p99 in ms.

usage (pika from the peer's venv, perf/peer/install.sh):
    perf/peer/.venv/bin/python perf/load/broker-confirm-floor.py [quorum|classic] [bytes] [seconds]
"""

import os
import sys
import time

import pika


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorum"
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 100 * 1024
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
    arguments = {"x-queue-type": "quorum"} if kind == "quorum" else {}
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
    channel = connection.channel()
    queue = f"broker-floor-{kind}-{os.getpid()}"
    channel.queue_declare(queue, durable=True, arguments=arguments)
    channel.confirm_delivery()
    body = os.urandom(size)
    properties = pika.BasicProperties(delivery_mode=2)
    latencies = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            channel.basic_publish("", queue, body, properties, mandatory=True)
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        channel.queue_delete(queue)
        connection.close()
    latencies.sort()
    n = len(latencies)
    print(f"{kind} {size} B: {n} publishes, p50 {latencies[n // 2]:.3f} ms, "
          f"p99 {latencies[int(n * 0.99)]:.3f} ms")


if __name__ == "__main__":
    main()
