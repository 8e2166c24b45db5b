"""API documentation that works without internet, and an OpenAPI document that tells the truth.

Swagger UI and ReDoc are served by the service itself from the assets the fastapi-offline
package ships (hospital networks often cannot reach a CDN), or not at all with
CDS_DOCS=false. The OpenAPI document lists the statuses the service really answers with:
FastAPI's default 422 never happens here (bad input is 400), and every error has the same
`{"error": ..., "details": [...]}` body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, for a person"},
        "details": {"type": "array", "items": {"type": "string"},
                    "description": "one line per problem found in the request"},
    },
}

DESCRIPTIONS = {
    "400": "Malformed JSON, wrong Content-Type, or a request that breaks the CDS Hooks 2.0 "
           "specification (the details say what)",
    "401": "Trust mode: no valid client JWT (WWW-Authenticate: Bearer)",
    "404": "No CDS service with this id",
    "405": "Method not allowed (the Allow header lists the methods)",
    "412": "Required data could be neither prefetched nor fetched from the FHIR server",
    "413": "Request body larger than CDS_MAX_BODY_BYTES",
    "503": "The store is not usable right now",
}


BODY_MODEL = "x-body-model"  # openapi_extra key: the name of a model documented as a body
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for an endpoint that reads and validates its JSON body itself (see
    cds.api's hook endpoint): documents `model` as the body, as a body parameter would."""
    _BODY_MODELS[model.__name__] = model
    return {BODY_MODEL: model.__name__, "requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def new_app(docs: bool, **kwargs: Any) -> FastAPI:
    """The FastAPI application, with offline /docs and /redoc, or with no docs at all."""
    if docs:
        app = FastAPIOffline(**kwargs)
    else:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **kwargs)
    _document_statuses(app)
    return app


def _operation_statuses(path: str, method: str, responses: dict[str, Any]) -> None:
    responses.pop("422", None)
    if path.startswith("/cds-services"):
        responses.setdefault("401", {})
    if method in ("post", "put", "patch"):
        responses.setdefault("400", {})
        responses.setdefault("413", {})
    for code, response in responses.items():
        if code[0] in "45":
            if not response.get("description") or response["description"] in (
                    "Additional Response", "Validation Error"):
                response["description"] = DESCRIPTIONS.get(code, "Error")
            response.setdefault("content", {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}})


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """The model's JSON schema, and those of the models it uses, as components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, schema)


def _document_statuses(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _operation_statuses(path, method, operation.setdefault("responses", {}))
                model = operation.pop(BODY_MODEL, None)
                if model is not None:
                    _add_model(schemas, _BODY_MODELS[model])
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR_SCHEMA
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
