"""OpenAI /v1/files: uploads go to 1min.ai's Asset API; their metadata lives in the relay's state store,
namespaced by the caller's identity (`api/auth.py`; another caller's file is a 404, never a 403)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from onemin_relay.api.auth import caller
from onemin_relay.api.common import page_query, relay
from onemin_relay.api.downloads import stream_asset
from onemin_relay.api.uploads import file_type, multipart_form, safe_filename, store_asset
from onemin_relay.errors import invalid_request, not_found
from onemin_relay.fastjson import JSONResponse
from onemin_relay.state.base import FileRecord

# CreateFileRequest.purpose in OpenAI's specification.
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_MIN_EXPIRY, _MAX_EXPIRY = 3600, 2_592_000  # FileExpirationAfter.seconds
_MAX_LIST_LIMIT = 10_000
_MAX_ID_LENGTH = 64


def new_file_id() -> str:
    """`file-` + creation time + randomness: files made within one second still list in creation order."""
    return f"file-{time.time_ns():016x}{secrets.token_hex(8)}"


def file_object(record: FileRecord) -> dict[str, Any]:
    """OpenAI's File object for a stored record."""
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "filename": record.filename,
        "purpose": record.purpose,
        "status": "processed",
    }


async def find_file(request: Request, file_id: str, *, param: str = "id") -> FileRecord:
    """The caller's file `file_id`, or OpenAI's 404 — also for files of other keys and expired ones."""
    owner = caller(request).identity
    record = None
    if file_id and len(file_id) <= _MAX_ID_LENGTH:
        record = await relay(request).state.get_file(owner, file_id)
    if record is None or record.expires_at <= time.time():
        raise not_found(f"No such File object: {file_id[:_MAX_ID_LENGTH]}", param=param)
    return record


async def create_file(request: Request) -> Response:
    who = caller(request)
    context = relay(request)
    async with multipart_form(request, max_file_bytes=context.settings.max_file_upload_bytes) as form:
        upload = form.required_file("file")
        purpose = form.choice("purpose", PURPOSES, None) or form.required_text("purpose")
        lifetime = _expires_after(form.text("expires_after[anchor]"), form.integer("expires_after[seconds]"))
        media = file_type(upload)
        filename = safe_filename(upload.filename or "", extension=media.extension)
        size = upload.size or 0
        await context.state.ping()  # no upload upstream when its record could not be kept
        asset = await store_asset(context.upstream, who.upstream_key, upload.file, filename, media, "file")
    created = int(time.time())
    retention = int(context.settings.file_retention)
    record = FileRecord(
        id=new_file_id(),
        owner=who.identity,
        filename=(upload.filename or filename)[:255],
        bytes=size,
        purpose=purpose,
        created_at=created,
        expires_at=created + min(retention, lifetime or retention),
        asset_path=asset.path,
        asset_uuid=asset.uuid,
        mime_type=media.mime_type,
    )
    await context.state.put_file(record)
    return JSONResponse(file_object(record))


def _expires_after(anchor: str | None, seconds: int | None) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise invalid_request(
            "Invalid value for 'expires_after.anchor': the only supported anchor is 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    if seconds is None or not _MIN_EXPIRY <= seconds <= _MAX_EXPIRY:
        raise invalid_request(
            f"Invalid value for 'expires_after.seconds': it must be between {_MIN_EXPIRY} and {_MAX_EXPIRY}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return seconds


async def list_files(request: Request) -> Response:
    owner = caller(request).identity
    query = request.query_params
    limit, order = page_query(request, default_limit=_MAX_LIST_LIMIT, max_limit=_MAX_LIST_LIMIT)
    after = query.get("after") or None
    if after is not None and len(after) > _MAX_ID_LENGTH:
        raise invalid_request(
            "Invalid value for 'after': not a file id.", param="after", code="invalid_value"
        )
    records, has_more = await relay(request).state.list_files(
        owner,
        purpose=query.get("purpose") or None,
        limit=limit,
        after=after,
        order=order,
    )
    data = [file_object(record) for record in records]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


async def retrieve_file(request: Request) -> Response:
    record = await find_file(request, request.path_params["file_id"])
    return JSONResponse(file_object(record))


async def delete_file(request: Request) -> Response:
    """Forget the file: 1min.ai has no asset delete API, so the stored bytes stay upstream, but the relay
    no longer knows where they are and nobody can reach them through it."""
    record = await find_file(request, request.path_params["file_id"])
    await relay(request).state.delete_file(record.owner, record.id)
    return JSONResponse({"id": record.id, "object": "file", "deleted": True})


async def file_content(request: Request) -> Response:
    record = await find_file(request, request.path_params["file_id"])
    if request.method == "HEAD":  # what the relay knows of the file, without fetching it from 1min.ai
        return Response(media_type=record.mime_type, headers={"content-length": str(record.bytes)})
    return await stream_asset(relay(request).upstream, record.asset_path, record.mime_type)


routes: list[BaseRoute] = [
    Route("/v1/files", create_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]
