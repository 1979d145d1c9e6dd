"""Routes over the asset store: the Asset API upload (§6), the public CDN, the pre-signed URL look-alike."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message

from onemin_relay.simulator.assets import UPLOAD_FOLDERS, StoredFile, extension_of, safe_name
from onemin_relay.simulator.errors import shape_b
from onemin_relay.simulator.gateway import (
    Call,
    apply_public_faults,
    log_entry,
    open_call,
    read_capped,
    sim_state,
)
from onemin_relay.simulator.limits import estimate_tokens
from onemin_relay.simulator.records import team_user
from onemin_relay.simulator.state import now_iso

TEXT_DOCUMENTS = ("txt", "csv")


def replayed(request: Request, body: bytes) -> Request:
    """A copy of `request` whose body is `body` (already read, and size-checked)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def upload_asset(request: Request) -> Response:
    call = await open_call(request, shape="B", scopes={"http"}, json_body=False)
    limit = call.state.config.asset_max_bytes
    raw = await read_capped(request, limit + 64 * 1024, "B")
    try:
        async with replayed(request, raw).form(max_files=4, max_fields=16) as form:
            parts = [(name, value) for name, value in form.multi_items()]
            log_entry(request)["multipart"] = [_describe(name, value) for name, value in parts]
            upload = form.get("asset")
            if not isinstance(upload, UploadFile):
                raise shape_b(400, "INVALID_REQUEST", "Unexpected field: the file part must be named 'asset'")
            data = await upload.read()
            filename = upload.filename or ""
            mimetype = upload.content_type or "application/octet-stream"
    except MultiPartException as exc:
        raise shape_b(400, "INVALID_REQUEST", f"Malformed multipart body: {exc.message}") from None
    extension = extension_of(filename)
    if extension not in UPLOAD_FOLDERS:
        raise shape_b(400, "UNSUPPORTED_FILE_TYPE", "The file type isn't supported")
    if len(data) > limit:
        raise shape_b(413, "FILE_TOO_LARGE", f"The file is larger than {limit} bytes")
    folder = UPLOAD_FOLDERS[extension]
    key = call.state.assets.new_key(folder, safe_name(filename))
    stored = call.state.assets.put(key, data, "application/octet-stream")
    return JSONResponse(asset_response(call, stored, filename, mimetype, extension))


def _describe(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, UploadFile):
        return {
            "name": name,
            "filename": value.filename,
            "content_type": value.content_type,
            "size": value.size,
        }
    return {"name": name, "value": str(value)[:200]}


def asset_response(
    call: Call, stored: StoredFile, filename: str, mimetype: str, extension: str
) -> dict[str, Any]:
    """The `{asset, fileContent}` pair of §6.2 (multer-S3 upload record + 1min.ai file record)."""
    user = team_user(call, call.state.ledger.used(call.key_hash))
    original = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    characters = 0
    if UPLOAD_FOLDERS[extension] == "documents":
        characters = (
            len(stored.data.decode("utf-8", "replace"))
            if extension in TEXT_DOCUMENTS
            else len(stored.data) // 8
        )
    multer = {"fieldname": "asset", "originalname": original, "encoding": "7bit", "mimetype": mimetype}
    return {
        "asset": {
            **multer,
            "size": len(stored.data),
            "bucket": "asset.1min.ai",
            "key": stored.key,
            "acl": "private",
            "contentType": "application/octet-stream",
            "contentDisposition": None,
            "contentEncoding": None,
            "storageClass": "STANDARD",
            "serverSideEncryption": None,
            "metadata": {"team-id": user["teamId"], "user-id": user["userId"], **multer},
            "location": f"https://asset.1min.ai.s3.us-east-1.amazonaws.com/{stored.key}",
            "etag": stored.etag,
        },
        "fileContent": {
            "uuid": stored.uuid,
            "path": stored.key,
            "type": extension,
            "name": stored.key.rsplit("/", 1)[-1],
            "content": "",
            "status": "ACTIVE",
            "metadata": {"token": estimate_tokens("x" * characters), "character": characters},
            "createdAt": now_iso(),
        },
    }


def s3_error(code: str, message: str) -> str:
    header = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{header}<Error><Code>{code}</Code><Message>{message}</Message></Error>"


def _file_response(request: Request, stored: StoredFile | None) -> Response:
    if stored is None:
        body = s3_error("NoSuchKey", "The specified key does not exist.")
        return Response(body, 404, media_type="application/xml")
    headers = {"ETag": stored.etag}
    content = b"" if request.method == "HEAD" else stored.data
    response = Response(content, 200, headers=headers, media_type=stored.content_type)
    response.headers["Content-Length"] = str(len(stored.data))
    return response


async def cdn(request: Request) -> Response:
    """`GET /cdn/<key>`: stands in for the public `https://asset.1min.ai/<key>`."""
    await apply_public_faults(request)
    return _file_response(request, sim_state(request).assets.get(request.path_params["key"]))


async def signed(request: Request) -> Response:
    """`GET /s3/asset.1min.ai/<key>?X-Amz-…`: the `temporaryUrl`; a wrong or stale signature is refused."""
    await apply_public_faults(request)
    assets = sim_state(request).assets
    key = request.path_params["key"]
    params = request.query_params
    if not assets.check_signature(key, params.get("X-Amz-Date", ""), params.get("X-Amz-Signature", "")):
        body = s3_error("AccessDenied", "Request has expired or the signature does not match")
        return Response(body, 403, media_type="application/xml")
    return _file_response(request, assets.get(key))
