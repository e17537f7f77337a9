"""The OpenAPI 3.1 document of the status routes, served at ``/openapi.json``.

Every limit and name in it is imported from the module that owns the rule.
"""

from __future__ import annotations

from typing import Any

from . import __name__ as _package
from .arguments import MAX_LIST_LIMIT, MAX_WAIT
from .model import Status
from .names import MAX_NAME_LENGTH
from .rules import MAX_ERROR_GROUPS, MAX_ERROR_LENGTH, MAX_ITEM_LENGTH
from .stores.protocol import STATUSES

__all__ = ["JOBS_PATH", "openapi_document"]

JOBS_PATH = "/namespaces/{namespace_name}/upload-jobs"
"""The path template of a namespace's jobs; each job's routes are below it."""

_NAME = {
    "type": "string",
    "pattern": f"^[A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}}$",
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
}
_TIMESTAMP = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
    "examples": ["2026-05-21T12:00:00.000Z"],
}
_COUNT = {"type": "integer", "minimum": 0}
_NULLABLE_TIMESTAMP = {"oneOf": [_TIMESTAMP, {"type": "null"}]}
_NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _NAME}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _response(
    description: str, schema: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_NO_STORE, **(headers or {})},
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error(description: str) -> dict[str, Any]:
    return _response(description, "Error")


def _header(name: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}


_UNAUTHORIZED = _error("The authorize hook wants credentials.")
_UNAVAILABLE = _response(
    "The job store is unreachable or busy; retry later.", "Error", _RETRY_AFTER
)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def _page(key: str, items: dict[str, Any]) -> dict[str, Any]:
    return _object(
        {
            key: {"type": "array", "maxItems": MAX_LIST_LIMIT, "items": items},
            "next_cursor": {"type": ["string", "null"]},
        }
    )


def _limit_pattern(most: int) -> str:
    """A pattern for 1 to *most* (a power of ten), leading zeros allowed, or empty."""
    digits = len(str(most)) - 1
    assert most == 10**digits, "the limit pattern is written for a power of ten"
    return f"^(0*([1-9][0-9]{{0,{digits - 1}}}|{most}))?$"


_LIMIT = _query(
    "limit",
    f"Items per page: an integer from 1 to {MAX_LIST_LIMIT} (empty: not given).",
    {"type": "string", "pattern": _limit_pattern(MAX_LIST_LIMIT), "default": "100"},
)
_CURSOR = "next_cursor of the previous page, unchanged (empty: the first page)."
_ITEM_CURSOR = _query("cursor", _CURSOR, {"type": "string", "pattern": "^[0-9]{0,16}$"})
_LIST_CURSOR_PATTERN = f"^(-?[0-9]{{1,16}}\\.[A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}})?$"
_NAME_CURSOR_PATTERN = f"^([A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}})?$"
_LIST_QUERY = [
    _query(
        "status",
        "Only the jobs of this status (empty or absent: every job). stalled: running "
        "and not updated for longer than the server's stall_after (400 without one).",
        {"type": "string", "enum": [*STATUSES, ""]},
    ),
    _LIMIT,
    _query("cursor", _CURSOR, {"type": "string", "pattern": _LIST_CURSOR_PATTERN}),
]


def _route(
    operation: str,
    summary: str,
    ok: dict[str, Any],
    *,
    job: bool = True,
    namespace: bool = True,
    query: list[dict[str, Any]] | None = None,
    bad: str = "Malformed namespace name, job id or query parameter.",
    missing: str | None = "No such job in this namespace.",
) -> dict[str, Any]:
    """A GET route: its parameters and every response it may give."""
    responses: dict[str, Any] = {
        "200": ok,
        "400": _error(bad),
        "401": _UNAUTHORIZED,
        "403": _error("The authorize hook refused this namespace."),
    }
    if missing is not None:
        responses["404"] = _error(missing)
        responses["410"] = _error(
            "The job completed and its retention has passed: the message says when it "
            "expired (until remember_expired later; then 404)."
        )
    responses["503"] = _UNAVAILABLE
    get: dict[str, Any] = {"operationId": operation, "summary": summary, "responses": responses}
    if query:
        get["parameters"] = query
    if not namespace:
        del responses["403"]  # (a namespace the hook refuses is left out of the list)
        return {"get": get}
    parameters = [_path("namespace_name"), *([_path("job_id")] if job else [])]
    return {"parameters": parameters, "get": get}


_ETAG = {"ETag": {"schema": {"type": "string"}, "description": "The document's version."}}


def _status_route() -> dict[str, Any]:
    """The status route: the document with its ETag, 304 for If-None-Match, ?wait= long-poll."""
    route = _route(
        "getUploadJobStatus",
        "Get upload job status",
        _response("The job's status.", "JobStatus", _ETAG),
        query=[
            _header("If-None-Match"),
            _query(
                "wait",
                "With If-None-Match: hold an unchanged document up to this many whole "
                f"seconds (1 to {MAX_WAIT}) for a change, then 304 (empty: not given).",
                {"type": "string", "pattern": "^([1-9]|[1-5][0-9]|60)?$"},
            ),
        ],
        bad="Malformed namespace name, job id or wait.",
    )
    route["get"]["responses"]["304"] = {
        "description": "Not modified: the client's If-None-Match is the document's ETag.",
        "headers": {**_NO_STORE, **_ETAG},
    }
    return route


_ITEMS_MISSING = "No such job in this namespace (or a store without items)."
_JOB_STATUS = _object(
    {
        "job_id": _NAME,
        "namespace_name": _NAME,
        "status": {"type": "string", "enum": [status.value for status in Status]},
        "total": _COUNT,
        "processed": _COUNT,
        "successful": _COUNT,
        "failed": _COUNT,
        "last_error": {"type": ["string", "null"], "maxLength": MAX_ERROR_LENGTH},
        "started_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "finished_at": _NULLABLE_TIMESTAMP,
    }
)
_FAILED_ITEM = _object(
    {
        "item": {"type": "string", "minLength": 1, "maxLength": MAX_ITEM_LENGTH},
        "error": {"type": ["string", "null"], "maxLength": MAX_ERROR_LENGTH},
        "failed_at": _TIMESTAMP,
    }
)
_ERROR_COUNT = _object(
    {
        "message": {
            "type": ["string", "null"],
            "description": f"null: messages beyond the first {MAX_ERROR_GROUPS}",
        },
        "count": _COUNT,
        "first_at": _TIMESTAMP,
        "last_at": _TIMESTAMP,
    }
)
_NAMESPACE_COUNTS = _object(
    {
        "name": _NAME,
        "running": {**_COUNT, "description": "Running jobs, the stalled ones included."},
        "stalled": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "Running jobs not updated for longer than the server's stall_after "
            "(to the second); null without one.",
        },
        "completed": {**_COUNT, "description": "Completed jobs, expired ones left out."},
    }
)
_ERROR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "message"],
    "properties": {
        "job_id": {"type": "string"},
        "namespace_name": {"type": "string"},
        "status": {"type": "string", "const": "failure"},
        "message": {"type": "string"},
    },
}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the job status route and the routes beside it."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobtrack upload job status",
            "version": version,
            "description": (
                "Progress of batch upload jobs, in the wire format of the Moorcheh "
                f"'Get upload job status' route. Served by {_package}.asgi."
            ),
        },
        "paths": {
            "/namespaces": _route(
                "listNamespaces",
                "The namespaces that hold jobs, by name, with their running, stalled and "
                "completed counts (running includes stalled; stalled is null without the "
                "server's stall_after; with an authorize hook, only the namespaces it allows)",
                _response("One page of namespaces.", "NamespacePage"),
                namespace=False,
                query=[
                    _LIMIT,
                    _query("cursor", _CURSOR, {"type": "string", "pattern": _NAME_CURSOR_PATTERN}),
                ],
                bad="Malformed query parameter.",
                missing=None,
            ),
            JOBS_PATH: _route(
                "listUploadJobs",
                "The namespace's upload jobs, newest first (expired ones left out)",
                _response("One page of jobs.", "JobPage"),
                job=False,
                query=_LIST_QUERY,
                bad="Malformed namespace name or query parameter.",
                missing=None,
            ),
            JOBS_PATH + "/{job_id}": _status_route(),
            JOBS_PATH + "/{job_id}/failed-items": _route(
                "listFailedItems",
                "The job's failed items, in the order they failed",
                _response("One page of failed items.", "FailedItemPage"),
                query=[_LIMIT, _ITEM_CURSOR],
                missing=_ITEMS_MISSING,
            ),
            JOBS_PATH + "/{job_id}/events": _route(
                "streamUploadJobStatus",
                "Server-sent events: each newer status document, until the completed one",
                {
                    "description": (
                        "An event stream: 'event: status', 'id: <ETag>', 'data: <the status "
                        "document>' for each change; a ':' comment at least every 15 s; it ends "
                        "after the completed document (Last-Event-ID resumes). 'event: failure' "
                        "with a failure body if the job goes or the store fails meanwhile."
                    ),
                    "headers": _NO_STORE,
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                query=[_header("Last-Event-ID")],
                bad="Malformed namespace name or job id.",
            ),
            JOBS_PATH + "/{job_id}/progress": _route(
                "getUploadJobProgress",
                "How the job is getting on: smoothed rate, ETA, stalled, expiry",
                _response("The job's progress, by the server's clock.", "Progress"),
                bad="Malformed namespace name or job id.",
            ),
            JOBS_PATH + "/{job_id}/errors": _route(
                "listErrorCounts",
                "The job's failures that carried an error, by message, most frequent first",
                _response("The error groups.", "ErrorCounts"),
                missing=_ITEMS_MISSING,
            ),
            "/metrics": {
                "get": {
                    "operationId": "getMetrics",
                    "summary": "Prometheus metrics: each namespace's jobs, items, latencies",
                    "responses": {
                        "200": {
                            "description": (
                                "Prometheus text format; no label per job (namespace labels "
                                "only). Asks the authorize hook with the name '/metrics'."
                            ),
                            "headers": _NO_STORE,
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _UNAUTHORIZED,
                        "403": _error("The authorize hook refused /metrics."),
                        "404": _error(
                            "Metrics are off (status_app(metrics=False)) or the server lacks "
                            "the metrics extra (prometheus_client)."
                        ),
                        "503": _UNAVAILABLE,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "FailedItemPage": _page("items", _FAILED_ITEM),
                "ErrorCounts": _object(
                    {
                        "errors": {
                            "type": "array",
                            "maxItems": MAX_ERROR_GROUPS + 1,
                            "items": _ERROR_COUNT,
                        }
                    }
                ),
                "JobStatus": _JOB_STATUS,
                "Progress": _object(
                    {
                        "percent": {"type": "number", "minimum": 0, "maximum": 100},
                        "rate_per_s": {
                            "type": "number",
                            "minimum": 0,
                            "description": "Items done per second, smoothed (60 s time constant).",
                        },
                        "eta_at": {
                            **_NULLABLE_TIMESTAMP,
                            "description": "When the job should complete at that rate; "
                            "null while the rate is 0 or the job is done.",
                        },
                        "elapsed_s": {"type": "number", "minimum": 0},
                        "stalled": {"type": "boolean"},
                        "expires_at": _NULLABLE_TIMESTAMP,
                    }
                ),
                "JobPage": _page("jobs", {"$ref": "#/components/schemas/JobStatus"}),
                "NamespacePage": _page("namespaces", _NAMESPACE_COUNTS),
                "Error": _ERROR,
            }
        },
    }
