"""The peer's worker: the seed's pika consumer with face_recognition, prefetch 1.

    python peer_worker.py

For each message: decode, find faces (HOG), encode each face (128-d), compare with every
encoding stored so far, store this image's encodings (db 3, also for images without faces, so
"processed" can be seen) and its matches both ways (db 4), then ack. Like the seed, it reads the
stored encodings from Redis for every image; two workers can miss a pair appended at the same
time (facematch's stream ordering exists for that).
"""

import io
import json
import signal
import sys

import face_recognition
import numpy as np

import peer_common as common

THRESHOLD = 0.6

encodings_db = common.redis_db(common.ENCODINGS_DB)
matches_db = common.redis_db(common.MATCHES_DB)


def stored_encodings(skip):
    """Every stored (hash, encoding) pair except those of `skip`."""
    hashes, rows = [], []
    keys = list(encodings_db.scan_iter(match=common.key("*"), count=1000))
    if not keys:
        return hashes, np.zeros((0, 128))
    for k, raw in zip(keys, encodings_db.mget(keys)):
        h = k[len(common.PREFIX) :]
        if h == skip or raw is None:
            continue
        for e in json.loads(raw):
            hashes.append(h)
            rows.append(e)
    return hashes, np.array(rows).reshape(-1, 128)


def handle(channel, method, properties, body):
    digest = properties.message_id
    image = face_recognition.load_image_file(io.BytesIO(body))
    locations = face_recognition.face_locations(image)
    encodings = face_recognition.face_encodings(image, locations)
    hashes, known = stored_encodings(digest)
    matched = set()
    for encoding in encodings:
        if len(known):
            distances = face_recognition.face_distance(known, encoding)
            matched.update(h for h, d in zip(hashes, distances) if d <= THRESHOLD)
    for other in matched:
        matches_db.sadd(common.key(digest), other)
        matches_db.sadd(common.key(other), digest)
    encodings_db.set(common.key(digest), json.dumps([e.tolist() for e in encodings]))
    channel.basic_publish(
        common.LOGS,
        common.log_key("worker", "info"),
        ("%s: %d faces, %d matches" % (digest, len(encodings), len(matched))).encode(),
    )
    channel.basic_ack(delivery_tag=method.delivery_tag)


def main():
    connection = common.amqp_connection()
    channel = connection.channel()
    common.declare(channel)
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=common.QUEUE, on_message_callback=handle)
    signal.signal(signal.SIGTERM, lambda *_: channel.stop_consuming())
    print("peer worker ready", file=sys.stderr, flush=True)
    try:
        channel.start_consuming()
    finally:
        if connection.is_open:
            connection.close()


if __name__ == "__main__":
    sys.exit(main())
