"""`GET /metrics`: the service's Prometheus metrics (prometheus-client), one registry per app.

- feature_store_http_requests_total{endpoint, method, status} and
  feature_store_http_request_duration_seconds{endpoint, method, status} (a histogram), where
  `endpoint` is the route's path template (`/api/v1/features/discovery/{name}`), never the raw URL,
  so the label set stays bounded; a path no route matches is `unmatched`;
- feature_store_http_errors_total{endpoint, status}: answers of status 400 and above;
- feature_store_online_lookups_total{result="hit"|"miss"}: entities found / not found online;
- feature_store_snapshot_age_seconds (since the served snapshot was published),
  feature_store_snapshot_loaded_at, feature_store_snapshot_clients, feature_store_reloads_total:
  read from the OnlineStore at scrape time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import Response

from feature_store_assets.serving.online import OnlineStore

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UNMATCHED = "unmatched"


class _StoreCollector:
    def __init__(self, store: OnlineStore):
        self.store = store

    def collect(self):
        reloads = CounterMetricFamily("feature_store_reloads", "online snapshots loaded since the server started")
        reloads.add_metric([], self.store.reloads)
        yield reloads
        snapshot = self.store._snapshot  # None before the first publish: no age, no clients
        if snapshot is None:
            return
        now = datetime.now(UTC)
        age = GaugeMetricFamily("feature_store_snapshot_age_seconds", "seconds since the served file was published")
        age.add_metric([], (now - snapshot.published_at).total_seconds())
        yield age
        loaded = GaugeMetricFamily("feature_store_snapshot_loaded_at", "when the served snapshot was loaded (Unix s)")
        loaded.add_metric([], snapshot.loaded_at.timestamp())
        yield loaded
        clients = GaugeMetricFamily("feature_store_snapshot_clients", "clients in the served snapshot")
        clients.add_metric([], snapshot.clients)
        yield clients


class ServiceMetrics:
    """The app's metrics; `observe` is called once per request by the middleware `api.py` installs."""

    def __init__(self, store: OnlineStore):
        self.registry = CollectorRegistry()
        labels = ("endpoint", "method", "status")
        self.requests = Counter("feature_store_http_requests", "HTTP requests answered", labels, registry=self.registry)
        self.latency = Histogram(
            "feature_store_http_request_duration_seconds",
            "time to answer an HTTP request",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "feature_store_http_errors",
            "HTTP answers of status 400 and above",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.lookups = Counter(
            "feature_store_online_lookups",
            "online entity lookups: hit (found) or miss",
            ("result",),
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))

    def lookups_done(self, hits: int, misses: int) -> None:
        if hits:
            self.lookups.labels("hit").inc(hits)
        if misses:
            self.lookups.labels("miss").inc(misses)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint, method, str(status)).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(scope) -> str:
    """The path template of the route that answered (routing records it in the scope), or UNMATCHED."""
    return getattr(scope.get("route"), "path", UNMATCHED)


def metrics_middleware(metrics: ServiceMetrics):
    async def measure(request: Request, call_next):
        began = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.observe(route_template(request.scope), request.method, status, time.perf_counter() - began)

    return measure
