"""The OpenAPI 3.1 document of the status routes, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from . import __name__ as _package
from .names import MAX_NAME_LENGTH

__all__ = ["openapi_document"]

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


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    response["headers"].update(headers or {})
    return response


_JOB_PARAMETERS = [
    {"name": "namespace_name", "in": "path", "required": True, "schema": _NAME},
    {"name": "job_id", "in": "path", "required": True, "schema": _NAME},
]
_NO_STORE = {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}}
_UNAVAILABLE = _error(
    "The job store is unreachable or busy; retry later.",
    {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
)
_EXPIRED = _error(
    "The job completed and its retention has passed: the message says when it expired "
    "(until remember_expired later; then 404)."
)


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _NO_STORE,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _item_route(operation: str, summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    parameters = [*_JOB_PARAMETERS, *extra.get("query", [])]
    return {
        "parameters": parameters,
        "get": {
            "operationId": operation,
            "summary": summary,
            "responses": {
                "200": ok,
                "400": _error("Malformed namespace name, job id or query parameter."),
                "401": _error("The authorize hook wants credentials."),
                "403": _error("The authorize hook refused this namespace."),
                "404": _error("No such job in this namespace (or a store without items)."),
                "410": _EXPIRED,
                "503": _UNAVAILABLE,
            },
        },
    }


_PAGE_QUERY = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Items per page: an integer from 1 to 1000 (empty: not given).",
        "schema": {
            "type": "string",
            "pattern": "^(0*([1-9][0-9]{0,2}|1000))?$",
            "default": "100",
            "examples": ["100"],
        },
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page, unchanged (empty: the first page).",
        "schema": {"type": "string", "pattern": "^[0-9]{0,16}$"},
    },
]


_LIST_QUERY = [
    {
        "name": "status",
        "in": "query",
        "required": False,
        "description": (
            "Only the jobs of this status (empty or absent: every job). stalled: running "
            "and not updated for longer than the server's stall_after (400 without one)."
        ),
        "schema": {"type": "string", "enum": ["running", "completed", "stalled", ""]},
    },
    _PAGE_QUERY[0],
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page, unchanged (empty: the first page).",
        "schema": {
            "type": "string",
            "pattern": f"^(-?[0-9]{{1,16}}\\.[A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}})?$",
        },
    },
]

_LIST_ROUTE = {
    "parameters": [{"name": "namespace_name", "in": "path", "required": True, "schema": _NAME}],
    "get": {
        "operationId": "listUploadJobs",
        "summary": "The namespace's upload jobs, newest first (expired ones left out)",
        "parameters": _LIST_QUERY,
        "responses": {
            "200": _ok("One page of jobs.", "JobPage"),
            "400": _error("Malformed namespace name or query parameter."),
            "401": _error("The authorize hook wants credentials."),
            "403": _error("The authorize hook refused this namespace."),
            "503": _UNAVAILABLE,
        },
    },
}

_JOB_STATUS_PROPERTIES = {
    "job_id": _NAME,
    "namespace_name": _NAME,
    "status": {"type": "string", "enum": ["running", "completed"]},
    "total": _COUNT,
    "processed": _COUNT,
    "successful": _COUNT,
    "failed": _COUNT,
    "last_error": {"type": ["string", "null"], "maxLength": 1000},
    "started_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
    "finished_at": {"oneOf": [_TIMESTAMP, {"type": "null"}]},
}


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the job status route and the routes below it."""
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
            "/namespaces/{namespace_name}/upload-jobs": _LIST_ROUTE,
            "/namespaces/{namespace_name}/upload-jobs/{job_id}": {
                "parameters": [
                    {"name": "namespace_name", "in": "path", "required": True, "schema": _NAME},
                    {"name": "job_id", "in": "path", "required": True, "schema": _NAME},
                ],
                "get": {
                    "operationId": "getUploadJobStatus",
                    "summary": "Get upload job status",
                    "responses": {
                        "200": {
                            "description": "The job's status.",
                            "headers": {
                                "Cache-Control": {"schema": {"type": "string", "const": "no-store"}}
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/JobStatus"}
                                }
                            },
                        },
                        "400": _error("Malformed namespace name or job id."),
                        "401": _error("The authorize hook wants credentials."),
                        "403": _error("The authorize hook refused this namespace."),
                        "404": _error("No such job in this namespace."),
                        "410": _EXPIRED,
                        "503": _error(
                            "The job store is unreachable; retry later.",
                            {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
                        ),
                    },
                },
            },
            "/namespaces/{namespace_name}/upload-jobs/{job_id}/failed-items": _item_route(
                "listFailedItems",
                "The job's failed items, in the order they failed",
                _ok("One page of failed items.", "FailedItemPage"),
                query=_PAGE_QUERY,
            ),
            "/namespaces/{namespace_name}/upload-jobs/{job_id}/errors": _item_route(
                "listErrorCounts",
                "The job's failures that carried an error, by message, most frequent first",
                _ok("The error groups.", "ErrorCounts"),
            ),
        },
        "components": {
            "schemas": {
                "FailedItemPage": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["item", "error", "failed_at"],
                                "properties": {
                                    "item": {"type": "string", "minLength": 1, "maxLength": 512},
                                    "error": {"type": ["string", "null"], "maxLength": 1000},
                                    "failed_at": _TIMESTAMP,
                                },
                            },
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "ErrorCounts": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["errors"],
                    "properties": {
                        "errors": {
                            "type": "array",
                            "maxItems": 101,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["message", "count", "first_at", "last_at"],
                                "properties": {
                                    "message": {
                                        "type": ["string", "null"],
                                        "description": "null: messages beyond the first 100",
                                    },
                                    "count": _COUNT,
                                    "first_at": _TIMESTAMP,
                                    "last_at": _TIMESTAMP,
                                },
                            },
                        }
                    },
                },
                "JobStatus": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": list(_JOB_STATUS_PROPERTIES),
                    "properties": _JOB_STATUS_PROPERTIES,
                },
                "JobPage": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["jobs", "next_cursor"],
                    "properties": {
                        "jobs": {
                            "type": "array",
                            "maxItems": 1000,
                            "items": {"$ref": "#/components/schemas/JobStatus"},
                        },
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "message"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "namespace_name": {"type": "string"},
                        "status": {"type": "string", "const": "failure"},
                        "message": {"type": "string"},
                    },
                },
            }
        },
    }
