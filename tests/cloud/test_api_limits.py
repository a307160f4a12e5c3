"""Rate limiting per key and a locked-down CORS policy on the HQ API."""

from __future__ import annotations

from cloud.api import auth
from cloud.api.ratelimit import RateLimiter


def test_each_key_has_its_own_bucket(start_cloud):
    api, runtime = start_cloud(rate_limit_per_minute=3)
    one, two = ({"X-API-Key": auth.create_key(runtime.db, name=who, role="hq_admin").key} for who in ("Li", "Wu"))
    answers = [api.get("/v1/stores/s1/visits", headers=one).status_code for _ in range(4)]
    assert answers[:3] == [200] * 3 and answers[3] == 429
    refused = api.get("/v1/stores/s1/visits", headers=one)
    assert refused.json()["detail"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    assert api.get("/v1/stores/s1/visits", headers=two).status_code == 200


def test_buckets_refill_with_time():
    limiter = RateLimiter(60)
    who = limiter.identity("secret", None)
    assert who.startswith("key:") and "secret" not in who
    for _ in range(60):
        assert limiter.acquire(who, now=100.0) == 0
    assert limiter.acquire(who, now=100.0) > 0
    assert limiter.acquire(who, now=101.5) == 0  # one token per second


def test_no_cross_origin_access_unless_configured(start_cloud):
    api, _ = start_cloud()
    answer = api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_configured_origin_only(start_cloud):
    api, _ = start_cloud(cors_origins=("https://hq.brand.example",))
    allowed = api.options("/v1/members", headers={"Origin": "https://hq.brand.example",
                                                   "Access-Control-Request-Method": "GET"})
    assert allowed.headers.get("access-control-allow-origin") == "https://hq.brand.example"
    other = api.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
