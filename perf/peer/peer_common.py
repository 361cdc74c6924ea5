"""What the peer's REST server and worker share: names, connections, clean-up.

The peer is the seed's design (Flask + pika + face_recognition + Redis), kept only as a
measuring stick for perf/. Every exchange, queue and Redis key carries PEER_PREFIX so a run
never touches facematch's queues or keys; `python peer_common.py cleanup` deletes them.

Redis is used as the seed used it, one database per kind of data:
  db 1: name -> hash          db 2: hash -> set of names
  db 3: hash -> face encodings (JSON list of 128-d lists; written for every processed image)
  db 4: hash -> set of matched hashes
"""

import os
import socket
import sys

import pika
import redis

PREFIX = os.environ.get("PEER_PREFIX", "peer.")
AMQP_URL = os.environ.get("PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
REDIS_HOST = os.environ.get("PEER_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PEER_REDIS_PORT", "6379"))

TO_WORKER = PREFIX + "toWorker"  # direct exchange, as in the seed
LOGS = PREFIX + "logs"  # topic exchange, as in the seed
QUEUE = PREFIX + "scan"
ROUTING_KEY = PREFIX + "scan"

NAMES_DB, HASH_NAMES_DB, ENCODINGS_DB, MATCHES_DB = 1, 2, 3, 4


def key(k):
    """A Redis key under the peer's prefix."""
    return PREFIX + k


def redis_db(db):
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, decode_responses=True)


def amqp_connection():
    return pika.BlockingConnection(pika.URLParameters(AMQP_URL))


def declare(channel):
    """The seed's topology (idempotent): a durable direct exchange bound to a durable queue,
    and the topic exchange for log lines."""
    channel.exchange_declare(exchange=TO_WORKER, exchange_type="direct", durable=True)
    channel.exchange_declare(exchange=LOGS, exchange_type="topic", durable=True)
    channel.queue_declare(queue=QUEUE, durable=True)
    channel.queue_bind(queue=QUEUE, exchange=TO_WORKER, routing_key=ROUTING_KEY)


def log_key(component, level):
    return "%s.%s.%s" % (socket.gethostname(), component, level)


def cleanup():
    """Deletes every queue, exchange and Redis key this prefix created."""
    connection = amqp_connection()
    channel = connection.channel()
    channel.queue_delete(queue=QUEUE)
    for exchange in (TO_WORKER, LOGS):
        channel.exchange_delete(exchange=exchange)
    connection.close()
    removed = 0
    for db in (NAMES_DB, HASH_NAMES_DB, ENCODINGS_DB, MATCHES_DB):
        r = redis_db(db)
        batch = list(r.scan_iter(match=key("*"), count=1000))
        for i in range(0, len(batch), 1000):
            removed += r.delete(*batch[i : i + 1000])
    print("peer cleanup: %s* removed (%d Redis keys)" % (PREFIX, removed))


if __name__ == "__main__":
    if sys.argv[1:] == ["cleanup"]:
        cleanup()
    else:
        sys.exit("usage: peer_common.py cleanup")
