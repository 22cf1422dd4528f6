"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json.

Written by hand next to the routes; `tests/service/test_openapi.py` fails when a route is
missing from it or it names a route that does not exist.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad input",
        401: "Not logged in",
        403: "Role not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        415: "Unsupported media type (the detail names what is accepted)",
        416: "Range not satisfiable",
        422: "Unprocessable: the file is empty, truncated or cannot be decoded",
        503: "Try again later",
    }
    return {
        str(c): {"description": text[c], "content": {"application/problem+json": {"schema": _ref("Problem")}}}
        for c in codes
    }


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


ID = _param("id", "path", {"type": "integer"}, "Numeric id")
LIMIT = _param(
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size"
)
CURSOR = _param("cursor", "query", {"type": "string"}, "The `next` value of the previous page")
SINCE = _param("since", "query", {"type": "string", "format": "date-time"}, "At or after")
UNTIL = _param("until", "query", {"type": "string", "format": "date-time"}, "Before")
STD = (400, 401, 403)
CHANNEL = _param(
    "channel",
    "path",
    {"type": "string", "enum": ["email", "phone", "sms", "post", "all"]},
    "Marketing channel",
)
REASON = {"type": "object", "properties": {"reason": {"type": "string"}}}


def _decision(summary: str) -> dict[str, Any]:
    """A privacy officer's decision on a proposed ban, with an optional reason."""
    return {
        "post": {
            "summary": summary,
            "parameters": [ID],
            "requestBody": {"required": False, "content": {"application/json": {"schema": REASON}}},
            "responses": {"200": _json(_ref("MarketingBan")), **_problems(*STD, 404)},
        }
    }


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "total", "next"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "total": {"type": "integer"},
            "next": {"type": ["string", "null"]},
            "total_exact": {
                "type": "boolean",
                "description": "false: counting stopped; there are at least `total` (a very common word)",
            },
        },
    }


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
        },
    },
    "CustomerInput": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "business_id": {"type": ["string", "null"]},
            "emails": {"type": "array", "items": {"type": "string"}},
            "phones": {"type": "array", "items": {"type": "string"}},
            "address": {"type": ["string", "null"]},
            "bank_account": {"type": ["string", "null"]},
            "contact_person": {"type": ["string", "null"]},
            "notes": {"type": ["string", "null"]},
            "personal_id": {
                "type": ["string", "null"],
                "description": "Finnish personal identity code, checked by its date and check character",
            },
            "sources": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "PUT …/external only: where each field's value came from",
            },
        },
        "additionalProperties": False,
    },
    "Customer": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "business_id": {"type": ["string", "null"]},
            "emails": {"type": "array", "items": {"type": "string"}},
            "phones": {"type": "array", "items": {"type": "string", "description": "E.164"}},
            "address": {"type": ["string", "null"]},
            "bank_account": {"type": ["string", "null"]},
            "contact_person": {"type": ["string", "null"]},
            "notes": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "linked_interactions": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Only on create/update: interactions linked now",
            },
            "marketing_bans": {
                "type": "object",
                "description": "Only on read: active bans and pending proposals",
                "properties": {
                    "active": {"type": "array", "items": _ref("MarketingBan")},
                    "proposed": {"type": "array", "items": _ref("MarketingBan")},
                },
            },
        },
    },
    "MarketingBan": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer_id": {"type": ["integer", "null"]},
            "identifier": {
                "type": ["object", "null"],
                "description": "Someone who is no customer: kind, value (null once erased), keyed hash",
            },
            "channel": {"type": "string", "enum": ["email", "phone", "sms", "post", "all"]},
            "status": {"type": "string", "enum": ["proposed", "active", "rejected", "lifted"]},
            "reason": {"type": ["string", "null"]},
            "confidence": {"type": ["number", "null"]},
            "source_interaction_id": {"type": ["integer", "null"]},
            "created_by": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "MarketingBanChange": {
        "type": "object",
        "properties": {
            "ban_id": {"type": "integer"},
            "channel": {"type": "string"},
            "old_status": {"type": ["string", "null"]},
            "new_status": {"type": "string"},
            "actor": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "source_interaction_id": {"type": ["integer", "null"]},
            "request_id": {"type": ["integer", "null"]},
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "Participant": {
        "type": "object",
        "properties": {
            "role": {"type": "string"},
            "kind": {"type": "string", "enum": ["email", "phone"]},
            "value": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "customer_id": {"type": ["integer", "null"]},
        },
    },
    "InteractionSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "channel": {"type": "string", "enum": ["email", "call", "chat"]},
            "direction": {"type": "string", "enum": ["in", "out"]},
            "occurred_at": {"type": "string", "format": "date-time"},
            "subject": {"type": ["string", "null"]},
            "snippet": {"type": "string"},
            "customer_id": {"type": ["integer", "null"]},
            "link_method": {"type": ["string", "null"]},
            "needs_review": {"type": "boolean"},
            "participants": {"type": "array", "items": _ref("Participant")},
            "attachment_count": {"type": "integer"},
        },
    },
    "Interaction": {
        "allOf": [
            _ref("InteractionSummary"),
            {
                "type": "object",
                "properties": {
                    "body": {"type": ["string", "null"]},
                    "message_id": {"type": ["string", "null"]},
                    "captured_at": {"type": "string", "format": "date-time"},
                    "raw_size": {"type": "integer"},
                    "parse_errors": {"type": "array", "items": {"type": "string"}},
                    "meta": {"type": "object"},
                    "attachments": {"type": "array", "items": {"type": "object"}},
                    "tags": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
    "WebhookInput": {
        "type": "object",
        "required": ["url", "secret", "events"],
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "secret": {"type": "string", "minLength": 16},
            "events": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": [
                        "interaction.created",
                        "interaction.transcribed",
                        "interaction.linked",
                        "marketing_ban.changed",
                        "subject.erased",
                    ],
                },
            },
        },
    },
    "Webhook": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "delivered", "dead"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": {"type": "string", "format": "date-time"},
            "last_error": {"type": ["string", "null"]},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "ChatInput": {
        "type": "object",
        "required": ["external_id", "messages"],
        "properties": {
            "external_id": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "participants": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": ["customer", "agent"]},
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "phone": {"type": "string"},
                    },
                },
            },
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "role", "text"],
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "role": {"type": "string", "enum": ["customer", "agent"]},
                        "text": {"type": "string"},
                    },
                },
            },
        },
    },
    "ChatReceipt": {
        "type": "object",
        "properties": {
            "interaction_id": {"type": "integer"},
            "created": {"type": "boolean"},
            "appended": {"type": "integer", "description": "messages that were new"},
        },
    },
    "SubjectRequestInput": {
        "type": "object",
        "required": ["kind", "identifiers"],
        "properties": {
            "kind": {"type": "string", "enum": ["access", "rectification", "erasure", "objection"]},
            "identifiers": {
                "type": "object",
                "properties": {
                    "customer_id": {"type": "integer"},
                    "email": {"type": "string"},
                    "phone": {"type": "string"},
                    "business_id": {"type": "string"},
                },
            },
            "received_at": {"type": "string", "format": "date-time", "description": "default: now"},
            "note": {"type": "string"},
        },
    },
    "SubjectRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "identifiers": {"type": "object", "description": 'after an erasure: {"erased": [kinds]}'},
            "received_at": {"type": "string", "format": "date-time"},
            "due_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["open", "done"]},
            "overdue": {"type": "boolean"},
            "note": {"type": ["string", "null"]},
            "created_by": {"type": "string"},
            "completed_at": {"type": ["string", "null"], "format": "date-time"},
            "completed_by": {"type": ["string", "null"]},
            "report": {
                "type": ["object", "null"],
                "description": "erasure: erased (counts per kind), retained (kind, id, reason, basis), "
                "marketing_bans_kept_as_hashes; access: exports",
            },
        },
    },
    "LegalHoldInput": {
        "type": "object",
        "required": ["basis"],
        "properties": {
            "customer_id": {"type": "integer"},
            "interaction_id": {"type": "integer"},
            "basis": {"type": "string", "description": "e.g. Kirjanpitolaki 2:10 (invoicing, 6 years)"},
            "until": {"type": "string", "format": "date-time"},
        },
    },
    "LegalHold": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "customer_id": {"type": ["integer", "null"]},
            "interaction_id": {"type": ["integer", "null"]},
            "basis": {"type": "string"},
            "until": {"type": ["string", "null"], "format": "date-time"},
            "active": {"type": "boolean"},
            "created_by": {"type": "string"},
            "released_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "CustomerCorrection": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "field": {"type": "string"},
            "old_value": {"type": ["string", "null"]},
            "new_value": {"type": ["string", "null"]},
            "actor": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "request_id": {"type": ["integer", "null"]},
        },
    },
    "AuditEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "customer_id": {"type": ["integer", "null"]},
            "interaction_id": {"type": ["integer", "null"]},
            "detail": {"type": "object"},
        },
    },
}

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

PATHS: dict[str, Any] = {
    "/api/v1/health": {
        "get": {"summary": "Liveness", "security": [], "responses": {"200": _json({"type": "object"})}}
    },
    "/api/v1/openapi.json": {
        "get": {"summary": "This document", "security": [], "responses": {"200": _json({"type": "object"})}}
    },
    "/api/v1/session": {
        "post": {
            "summary": "Log in with a staff user's personal credentials",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["username", "password"],
                            "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "201": _json(
                    {
                        "type": "object",
                        "properties": {"token": {"type": "string"}, "expires_in": {"type": "integer"}},
                    },
                    "Logged in",
                ),
                **_problems(400, 401, 415),
            },
        }
    },
    "/api/v1/customers": {
        "get": {
            "summary": "List or search customers (name, email, phone, business ID)",
            "parameters": [_param("q", "query", {"type": "string"}, "Search text"), LIMIT, CURSOR],
            "responses": {"200": _json(_page("Customer")), **_problems(*STD)},
        },
        "post": {
            "summary": "Create a customer; earlier unlinked interactions naming it get linked",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CustomerInput")}},
            },
            "responses": {"201": _json(_ref("Customer"), "Created"), **_problems(*STD, 409, 413, 415)},
        },
    },
    "/api/v1/customers/{id}": {
        "get": {
            "summary": "One customer",
            "parameters": [ID],
            "responses": {"200": _json(_ref("Customer")), **_problems(*STD, 404)},
        },
        "patch": {
            "summary": "Correct a customer; lists given replace the old ones. Each changed field is "
            "kept in the record's history (GET .../history)",
            "parameters": [
                ID,
                _param("request_id", "query", {"type": "integer"}, "The rectification request this answers"),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CustomerInput")}},
            },
            "responses": {"200": _json(_ref("Customer")), **_problems(*STD, 404, 409, 413, 415)},
        },
    },
    "/api/v1/customers/external/{source}/{external_id}": {
        "put": {
            "summary": "Create or update the customer a CRM knows by this id (idempotent; token scope crm "
            "or staff). Body: the customer fields (as POST /customers, plus personal_id) and optional "
            '"sources": {"<field>": "<where its value came from>"}; 201 created, 200 existed',
            "parameters": [
                _param("source", "path", {"type": "string"}, "The CRM, e.g. hubspot"),
                _param("external_id", "path", {"type": "string"}, "The customer's id there"),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CustomerInput")}},
            },
            "responses": {
                "200": _json(_ref("Customer")),
                "201": _json(_ref("Customer"), "Created"),
                **_problems(*STD, 409, 415),
            },
        }
    },
    "/api/v1/customers/{id}/history": {
        "get": {
            "summary": "Every correction of a customer record: field, old and new value, who, when, "
            "request (role privacy)",
            "parameters": [ID],
            "responses": {"200": _json(_page("CustomerCorrection")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/customers/{id}/marketing-bans/{channel}": {
        "put": {
            "summary": "Set a customer's marketing ban on a channel by hand (role privacy)",
            "parameters": [ID, CHANNEL],
            "requestBody": {"required": True, "content": {"application/json": {"schema": REASON}}},
            "responses": {
                "200": _json(_ref("MarketingBan")),
                "201": _json(_ref("MarketingBan"), "Created"),
                **_problems(*STD, 404),
            },
        },
        "delete": {
            "summary": "Lift a customer's ban on a channel (role privacy); reason in body or ?reason=",
            "parameters": [ID, CHANNEL],
            "requestBody": {"required": False, "content": {"application/json": {"schema": REASON}}},
            "responses": {"200": _json(_ref("MarketingBan")), **_problems(*STD, 404)},
        },
    },
    "/api/v1/customers/{id}/marketing-bans/history": {
        "get": {
            "summary": "Every change of a customer's marketing bans: who, when, why, source (role privacy)",
            "parameters": [ID],
            "responses": {"200": _json(_page("MarketingBanChange")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/marketing-bans": {
        "get": {
            "summary": "Marketing bans by status, proposals by default (role privacy)",
            "parameters": [
                _param(
                    "status",
                    "query",
                    {"type": "string", "enum": ["proposed", "active", "rejected", "lifted"]},
                    "Status",
                ),
                LIMIT,
                CURSOR,
            ],
            "responses": {"200": _json(_page("MarketingBan")), **_problems(*STD)},
        }
    },
    "/api/v1/marketing-bans/{id}/confirm": _decision(
        "Confirm a proposed ban: it becomes active (role privacy)"
    ),
    "/api/v1/marketing-bans/{id}/reject": _decision("Reject a proposed ban (role privacy)"),
    "/api/v1/marketing/check": {
        "post": {
            "summary": "May we contact this person on this channel? (staff, or a token with scope marketing)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "email": {"type": "string"},
                                "phone": {"type": "string"},
                                "customer_id": {"type": "integer"},
                                "channel": {"type": "string", "enum": ["email", "phone", "sms", "post"]},
                            },
                            "required": ["channel"],
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "allowed": {"type": "boolean"},
                            "reason": {"type": "string"},
                            "ban": {"oneOf": [_ref("MarketingBan"), {"type": "null"}]},
                        },
                    }
                ),
                **_problems(*STD, 404),
            },
        }
    },
    "/api/v1/marketing/suppression": {
        "get": {
            "summary": "Every identifier not to contact on a channel; CSV with Accept: text/csv",
            "parameters": [
                _param(
                    "channel",
                    "query",
                    {"type": "string", "enum": ["email", "phone", "sms", "post"]},
                    "Channel",
                )
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **_problems(*STD),
            },
        }
    },
    "/api/v1/interactions": {
        "get": {
            "summary": "Search the history, newest first",
            "parameters": [
                _param(
                    "q",
                    "query",
                    {"type": "string"},
                    'Full text: words, "phrases", prefix*, -excluded, a OR b',
                ),
                _param("customer_id", "query", {"type": "integer"}, "One customer's timeline"),
                _param("channel", "query", {"type": "string", "enum": ["email", "call", "chat"]}, "Channel"),
                SINCE,
                UNTIL,
                _param("unlinked", "query", {"type": "boolean"}, "Only interactions with no customer"),
                LIMIT,
                CURSOR,
            ],
            "responses": {"200": _json(_page("InteractionSummary")), **_problems(*STD)},
        }
    },
    "/api/v1/interactions/{id}": {
        "get": {
            "summary": "One interaction: participants, body, attachments, tags",
            "parameters": [ID],
            "responses": {"200": _json(_ref("Interaction")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/interactions/{id}/raw": {
        "get": {
            "summary": "The original as captured (.eml for email)",
            "parameters": [ID],
            "responses": {
                "200": {
                    "description": "The raw bytes",
                    "content": {"message/rfc822": {}, "application/octet-stream": {}},
                },
                **_problems(*STD, 404),
            },
        }
    },
    "/api/v1/interactions/{id}/audio": {
        "get": {
            "summary": "A call's original recording, byte for byte; supports Range requests for seeking",
            "parameters": [ID],
            "responses": {
                "200": {
                    "description": "The recording",
                    "content": {
                        t: {} for t in ("audio/wav", "audio/mpeg", "audio/ogg", "audio/flac", "audio/mp4")
                    },
                },
                "206": {"description": "The requested byte range"},
                **_problems(*STD, 404, 416),
            },
        }
    },
    "/api/v1/calls": {
        "post": {
            "summary": "A call recording from the phone system (token scope `ingest`, or a staff login)",
            "description": (
                "Stored durably with its transcription queued. The same `external_id` again answers "
                "with the call already stored (`duplicate: true`), never a second copy. Audio: "
                "WAV (PCM 16-bit, 8 kHz u-law/A-law), MP3, OGG/Opus, FLAC, M4A/AAC; anything else "
                "415, empty/truncated/undecodable 422, over `[calls] max_audio_bytes` 413."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["audio", "metadata"],
                            "properties": {
                                "audio": {"type": "string", "format": "binary"},
                                "metadata": {
                                    "type": "object",
                                    "required": ["external_id", "direction", "from", "to", "started_at"],
                                    "properties": {
                                        "external_id": {"type": "string"},
                                        "direction": {"enum": ["in", "out"]},
                                        "from": {"type": "string", "description": "Phone number"},
                                        "to": {"type": "string", "description": "Phone number"},
                                        "started_at": {"type": "string", "format": "date-time"},
                                        "agent": {"type": "string"},
                                        "channel_layout": {"enum": ["mono", "stereo", "stereo-reversed"]},
                                        "language": {
                                            "type": "string",
                                            "description": "fi, sv, en, ... or auto",
                                        },
                                    },
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": _json(
                    {
                        "type": "object",
                        "properties": {
                            "interaction_id": {"type": "integer"},
                            "status": {"enum": ["queued", "transcribing", "done", "failed"]},
                            "duplicate": {"type": "boolean"},
                        },
                    },
                    "Stored; transcription queued (or the call already stored)",
                ),
                **_problems(*STD, 413, 415, 422, 503),
            },
        }
    },
    "/api/v1/interactions/{id}/link": {
        "post": {
            "summary": "Link to a customer by hand (customer_id null unlinks)",
            "parameters": [ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["customer_id"],
                            "properties": {"customer_id": {"type": ["integer", "null"]}},
                        }
                    }
                },
            },
            "responses": {"200": _json(_ref("Interaction")), **_problems(*STD, 404, 415)},
        }
    },
    "/api/v1/subjects": {
        "get": {
            "summary": "Everything held about one person, linked or not",
            "parameters": [
                _param("email", "query", {"type": "string"}, "An email address"),
                _param("phone", "query", {"type": "string"}, "A phone number"),
                _param("customer_id", "query", {"type": "integer"}, "A customer"),
                LIMIT,
                CURSOR,
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "customer": {"oneOf": [_ref("Customer"), {"type": "null"}]},
                            "identifiers": {"type": "array", "items": {"type": "object"}},
                            "interactions": _page("InteractionSummary"),
                        },
                    }
                ),
                **_problems(*STD, 404),
            },
        }
    },
    "/api/v1/metrics": {
        "get": {
            "summary": "Prometheus text format: HTTP requests and latency by route (this process), "
            "interactions by channel, jobs by kind and status, job latency, transcription RTF, webhook "
            "deliveries (token scope metrics, or role admin)",
            "responses": {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_problems(401, 403),
            },
        }
    },
    "/api/v1/webhooks": {
        "post": {
            "summary": "Subscribe a URL to events (role admin). Deliveries are JSON POSTs "
            '{"id", "type", "created_at", "data"} signed with X-Kirjuri-Signature: t=<unix>,v1=<hex '
            'HMAC-SHA256 of "<t>.<body>">, at least once (de-duplicate by id)',
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("WebhookInput")}},
            },
            "responses": {"201": _json(_ref("Webhook"), "Created"), **_problems(*STD, 415)},
        },
        "get": {
            "summary": "Webhook subscriptions (role admin)",
            "responses": {"200": _json(_page("Webhook")), **_problems(*STD)},
        },
    },
    "/api/v1/webhooks/{id}": {
        "delete": {
            "summary": "Remove a subscription and its undelivered deliveries (role admin)",
            "parameters": [ID],
            "responses": {"204": {"description": "Removed"}, **_problems(*STD, 404)},
        }
    },
    "/api/v1/webhooks/{id}/deliveries": {
        "get": {
            "summary": "A subscription's deliveries, newest first; status=dead for the dead letters "
            "(role admin)",
            "parameters": [
                ID,
                _param(
                    "status", "query", {"type": "string", "enum": ["pending", "delivered", "dead"]}, "Status"
                ),
                LIMIT,
            ],
            "responses": {"200": _json(_page("WebhookDelivery")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/webhooks/deliveries/{id}/redeliver": {
        "post": {
            "summary": "Send a delivery again with fresh attempts (role admin)",
            "parameters": [ID],
            "responses": {"202": _json({"type": "object"}, "Queued"), **_problems(*STD, 404)},
        }
    },
    "/api/v1/chats": {
        "post": {
            "summary": "A chat session from the chat platform (token scope ingest, or signed with "
            "X-Kirjuri-Signature and [chat] secret); the same external_id again appends its new "
            "messages. 201 created, 200 appended",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ChatInput")}},
            },
            "responses": {
                "200": _json(_ref("ChatReceipt")),
                "201": _json(_ref("ChatReceipt"), "Created"),
                **_problems(400, 401, 403, 413, 415, 503),
            },
        }
    },
    "/api/v1/subject-requests": {
        "post": {
            "summary": "Record a data subject request; due one month after it was received (role privacy)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SubjectRequestInput")}},
            },
            "responses": {"201": _json(_ref("SubjectRequest"), "Created"), **_problems(*STD, 415)},
        },
        "get": {
            "summary": "Subject requests, open overdue ones first, then by due date (role privacy)",
            "parameters": [
                _param("status", "query", {"type": "string", "enum": ["open", "done"]}, "Status"),
                LIMIT,
                CURSOR,
            ],
            "responses": {"200": _json(_page("SubjectRequest")), **_problems(*STD)},
        },
    },
    "/api/v1/subject-requests/{id}": {
        "get": {
            "summary": "One subject request with its report (role privacy)",
            "parameters": [ID],
            "responses": {"200": _json(_ref("SubjectRequest")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/subject-requests/{id}/export": {
        "get": {
            "summary": "Access export (art. 15), streamed as a ZIP: subject.json, index.html (Finnish and "
            "English, with the register description), emails/*.eml and calls/* originals (role privacy)",
            "parameters": [ID],
            "responses": {
                "200": {
                    "description": "ZIP archive",
                    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_problems(*STD, 404, 409),
            },
        }
    },
    "/api/v1/subject-requests/{id}/execute": {
        "post": {
            "summary": "Carry out a request: erasure erases and reports what was erased and retained; "
            "objection bans marketing on every channel; access (once exported) and rectification "
            "are closed (role privacy)",
            "parameters": [ID],
            "responses": {"200": _json(_ref("SubjectRequest")), **_problems(*STD, 404, 409)},
        }
    },
    "/api/v1/legal-holds": {
        "post": {
            "summary": "Put a customer (record and linked interactions) or one interaction on legal hold "
            "(role privacy)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("LegalHoldInput")}},
            },
            "responses": {"201": _json(_ref("LegalHold"), "Created"), **_problems(*STD, 404, 415)},
        },
        "get": {
            "summary": "Legal holds (binding ones unless active=false) (role privacy)",
            "parameters": [
                _param("customer_id", "query", {"type": "integer"}, "Customer"),
                _param("active", "query", {"type": "boolean"}, "false lists released and ended holds too"),
            ],
            "responses": {"200": _json(_page("LegalHold")), **_problems(*STD)},
        },
    },
    "/api/v1/legal-holds/{id}": {
        "delete": {
            "summary": "Release a legal hold (it stays listed, released) (role privacy)",
            "parameters": [ID],
            "responses": {"200": _json(_ref("LegalHold")), **_problems(*STD, 404)},
        }
    },
    "/api/v1/audit": {
        "get": {
            "summary": "Who read or changed personal data (roles privacy, admin)",
            "parameters": [
                _param("actor", "query", {"type": "string"}, "e.g. user:maija"),
                _param("action", "query", {"type": "string"}, "e.g. customer.read"),
                _param("customer_id", "query", {"type": "integer"}, "Customer"),
                _param("interaction_id", "query", {"type": "integer"}, "Interaction"),
                SINCE,
                UNTIL,
                LIMIT,
                CURSOR,
            ],
            "responses": {"200": _json(_page("AuditEntry")), **_problems(*STD)},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Kirjuri API",
        "version": "1",
        "description": "Customer interaction history. Errors are application/problem+json.",
    },
    "servers": [{"url": "/"}],
    "security": BEARER,
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
    "paths": PATHS,
}


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
