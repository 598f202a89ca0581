"""The baseline for bench_webhooks.py: a bare Flask handler that only pushes the body to Redis."""

import os

import redis
from flask import Flask, request

app = Flask("baseline")
conn = redis.Redis.from_url(os.environ["BASELINE_REDIS_URL"])


@app.post("/hook")
def hook():  # type: ignore[no-untyped-def]
    conn.lpush("baseline:events", request.get_data())
    return {"accepted": 1}, 202
