"""The OpenAPI 3.1 document of the status route, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

import attrs

from . import __name__ as _package
from .model import JobStatus
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


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``GET /namespaces/{namespace_name}/upload-jobs/{job_id}``."""
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
                        "503": _error(
                            "The job store is unreachable; retry later.",
                            {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
                        ),
                    },
                },
            }
        },
        "components": {
            "schemas": {
                "JobStatus": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [field.name for field in attrs.fields(JobStatus)],
                    "properties": {
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
