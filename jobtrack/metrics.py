"""Prometheus metrics of a tracker and of its status app (the ``metrics`` extra).

Opt in with ``JobTracker(store, metrics=Metrics())``: the tracker then counts
the items it records and times its store updates; a tracker without
metrics pays nothing. The status app serves them at ``GET /metrics`` with
the jobs of each namespace, read from the store at scrape time. Nothing
here touches prometheus_client's global registry, and importing jobtrack
never imports prometheus_client: :class:`Metrics` does, when made.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from .errors import ConfigurationError
from .model import JobStatus

__all__ = [
    "MAX_COUNTED_NAMESPACES",
    "MAX_SCRAPE_NAMESPACES",
    "MAX_SCRAPE_PAGES",
    "METERED",
    "OTHER_NAMESPACES",
    "Metrics",
]

R = TypeVar("R")

MAX_SCRAPE_NAMESPACES = 1000
"""Namespaces one scrape of ``/metrics`` reads, at most (the first, in the store's order)."""

MAX_SCRAPE_PAGES = 10
"""Pages of namespaces one scrape reads, at most (a page may end short)."""

MAX_COUNTED_NAMESPACES = 1000
"""Namespaces whose items a process counts under their own label, at most (a bound)."""

OTHER_NAMESPACES = "(other)"
"""The ``namespace`` label of the items of every namespace past the first 1,000 counted
(no namespace can have this name)."""

METERED = frozenset({"update", "update_many"})
"""The store calls a tracker with metrics times: its updates."""

_UPDATE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_ROUTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 30, 60)


class Metrics:
    """The counters and histograms of one process, in a registry of their own.

    * ``jobtrack_items_recorded_total{namespace, outcome}``: the successful
      and failed counts of the updates this process's tracker applied
      (``record``, ``record_many``);
    * ``jobtrack_store_update_seconds``: how long each of its store updates took;
    * ``jobtrack_http_request_duration_seconds{route}``: the status app's
      responses, by route template (never by raw path).

    :raises ConfigurationError: without prometheus_client
        (``pip install 'jobtrack[metrics]'``).
    """

    def __init__(self) -> None:
        try:
            import prometheus_client  # noqa: PLC0415 - an extra, imported only when asked for
            from prometheus_client.metrics_core import GaugeMetricFamily  # noqa: PLC0415
        except ImportError:
            raise ConfigurationError(
                "metrics need prometheus_client: pip install 'jobtrack[metrics]'"
            ) from None
        self._generate = prometheus_client.generate_latest
        self._gauge = GaugeMetricFamily
        self.content_type: str = prometheus_client.CONTENT_TYPE_LATEST
        """The ``Content-Type`` of :meth:`exposition`."""
        self.registry = prometheus_client.CollectorRegistry()
        self.items = prometheus_client.Counter(
            "jobtrack_items_recorded",
            "Items this process recorded, by namespace and outcome.",
            ["namespace", "outcome"],
            registry=self.registry,
        )
        self._counters: dict[tuple[str, str], Any] = {}
        self.updates = prometheus_client.Histogram(
            "jobtrack_store_update_seconds",
            "Seconds each store update of this process's tracker took.",
            buckets=_UPDATE_BUCKETS,
            registry=self.registry,
        )
        self.routes = prometheus_client.Histogram(
            "jobtrack_http_request_duration_seconds",
            "Seconds the status app took to answer, by route template.",
            ["route"],
            buckets=_ROUTE_BUCKETS,
            registry=self.registry,
        )
        self._routes: dict[str, Any] = {}

    def run(self, method: str, args: tuple[Any, ...], call: Callable[[], R]) -> R:
        """``call()``, the store update *method* with *args*, timed and its items counted."""
        started = time.perf_counter()
        try:
            answer = call()
        finally:
            self.updates.observe(time.perf_counter() - started)
        self._count(method, args, answer)
        return answer

    async def arun(self, method: str, args: tuple[Any, ...], call: Callable[[], Awaitable[R]]) -> R:
        """:meth:`run` for an awaitable store call."""
        started = time.perf_counter()
        try:
            answer = await call()
        finally:
            self.updates.observe(time.perf_counter() - started)
        self._count(method, args, answer)
        return answer

    def _count(self, method: str, args: tuple[Any, ...], answer: Any) -> None:
        if method == "update":
            self._add(args[0], args[2])
            return
        for (namespace, _, delta), outcome in zip(args[0], answer, strict=True):
            if isinstance(outcome, JobStatus):  # else the error that rejected it
                self._add(namespace, delta)

    def _add(self, namespace: str, delta: Any) -> None:
        if delta.successful:
            self._counter(namespace, "successful").inc(delta.successful)
        if delta.failed:
            self._counter(namespace, "failed").inc(delta.failed)

    def _counter(self, namespace: str, outcome: str) -> Any:
        """The items counter of *namespace* and *outcome* (kept: ``labels()`` takes a lock)."""
        counter = self._counters.get((namespace, outcome))
        if counter is None:
            full = len(self._counters) >= 2 * MAX_COUNTED_NAMESPACES  # a bound
            if full and namespace != OTHER_NAMESPACES:  # the rest, together
                return self._counter(OTHER_NAMESPACES, outcome)
            counter = self._counters[namespace, outcome] = self.items.labels(namespace, outcome)
        return counter

    def route(self, template: str) -> Any:
        """The latency histogram of the route *template* (kept: ``labels()`` takes a lock).

        The status app passes its OpenAPI path templates and "other": a few
        templates, so a few children.
        """
        child = self._routes.get(template)
        if child is None:
            child = self._routes[template] = self.routes.labels(template)
        return child

    def exposition(self, namespaces: Iterable[Any], truncated: bool) -> bytes:
        """The Prometheus text of these metrics and of the namespaces' jobs.

        *namespaces* are ``NamespaceCounts`` (``stalled`` None: no ``stall_after``).
        """
        return self._generate(_Scrape(self, namespaces, truncated))


class _Scrape:
    """One scrape: the process's own metrics, then the namespaces' jobs."""

    def __init__(self, metrics: Metrics, namespaces: Iterable[Any], truncated: bool):
        self.metrics, self.namespaces, self.truncated = metrics, namespaces, truncated

    def collect(self) -> Iterator[Any]:
        yield from self.metrics.registry.collect()
        gauges = self.metrics._gauge
        jobs = gauges(
            "jobtrack_jobs",
            "Jobs of each namespace by status (running includes stalled), read at scrape time.",
            labels=["namespace", "status"],
        )
        stalled = gauges(
            "jobtrack_stalled_jobs",
            "Running jobs of each namespace not updated for longer than stall_after.",
            labels=["namespace"],
        )
        for namespace in self.namespaces:
            jobs.add_metric([namespace.name, "running"], namespace.running)
            jobs.add_metric([namespace.name, "completed"], namespace.completed)
            if namespace.stalled is not None:
                stalled.add_metric([namespace.name], namespace.stalled)
        yield jobs
        yield stalled
        yield gauges(
            "jobtrack_namespaces_truncated",
            f"1 if there were more than {MAX_SCRAPE_NAMESPACES} namespaces: the rest are left out.",
            value=int(self.truncated),
        )
