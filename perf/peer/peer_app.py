"""The peer's REST server: the seed's three routes in Flask, served by gunicorn.

    gunicorn -w 2 -b 127.0.0.1:18080 peer_app:app

POST /scan/image/<filename> and POST /scan/url record the name in Redis and publish the image
to `toWorker` (persistent); GET /match/<hash> lists the names of matched images. A new image is
published once (its hash already in db 2 means it is known). One AMQP connection per gunicorn
worker process, opened after the fork. Set PEER_CONFIRMS=1 to publish with confirms (the seed
does not; facematch always does).
"""

import hashlib
import json
import os
import urllib.request

import pika
from flask import Flask, jsonify, request

import peer_common as common

CONFIRMS = os.environ.get("PEER_CONFIRMS", "0") == "1"

app = Flask(__name__)
names = common.redis_db(common.NAMES_DB)
hash_names = common.redis_db(common.HASH_NAMES_DB)
matches = common.redis_db(common.MATCHES_DB)

_channel = None


def channel():
    """This process's channel, (re)connected on first use or after a failure."""
    global _channel
    if _channel is None or _channel.is_closed:
        connection = common.amqp_connection()
        ch = connection.channel()
        common.declare(ch)
        if CONFIRMS:
            ch.confirm_delivery()
        _channel = ch
    return _channel


def publish(exchange, routing_key, body, properties):
    global _channel
    try:
        channel().basic_publish(exchange, routing_key, body, properties)
    except pika.exceptions.AMQPError:
        _channel = None  # reconnect once, then give up with the error
        channel().basic_publish(exchange, routing_key, body, properties)


def log(line):
    publish(common.LOGS, common.log_key("rest", "info"), line.encode(), None)


def scan(body, name):
    digest = hashlib.md5(body).hexdigest()
    known = hash_names.exists(common.key(digest))
    names.set(common.key(name), digest)
    hash_names.sadd(common.key(digest), name)
    if not known:
        props = pika.BasicProperties(delivery_mode=2, message_id=digest, headers={"name": name})
        publish(common.TO_WORKER, common.ROUTING_KEY, body, props)
    log("scan %s %s" % (name, digest))
    return jsonify({"hash": digest})


@app.route("/scan/image/<path:filename>", methods=["POST"])
def scan_image(filename):
    body = request.get_data()
    if not body:
        return jsonify({"error": "empty body"}), 400
    return scan(body, filename)


@app.route("/scan/url", methods=["POST"])
def scan_url():
    url = (request.get_json(force=True, silent=True) or {}).get("url")
    if not url:
        return jsonify({"error": "no url"}), 400
    with urllib.request.urlopen(url, timeout=20) as response:
        body = response.read()
    return scan(body, url)


@app.route("/match/<digest>", methods=["GET"])
def match(digest):
    found = set()
    for other in matches.smembers(common.key(digest)):
        found.update(hash_names.smembers(common.key(other)))
    return json.dumps(sorted(found)), 200, {"Content-Type": "application/json"}
