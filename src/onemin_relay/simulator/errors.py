"""The error bodies 1min.ai sends (reference §13): shape A (chat), shape B (features), and raw pages."""

from __future__ import annotations

from typing import Any, Literal

from starlette.responses import HTMLResponse, JSONResponse, Response

Shape = Literal["A", "B"]


class SimError(Exception):
    """Raised anywhere in a handler; the app answers with `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def shape_a(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> SimError:
    """`{"success": false, "error": {"code", "message"[, "details"]}}` — /api/chat-with-ai, conversations."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return SimError(JSONResponse({"success": False, "error": error}, status, headers=headers))


def shape_b(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> SimError:
    """`{"errorCode", "message"[, "details"]}` — /api/features and /api/assets."""
    body: dict[str, Any] = {"errorCode": code, "message": message}
    if details is not None:
        body["details"] = details
    return SimError(JSONResponse(body, status, headers=headers))


def api_error(
    shape: Shape,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> SimError:
    return (shape_a if shape == "A" else shape_b)(status, code, message, details, headers)


def infrastructure_error(status: int) -> SimError:
    """What the origin or the CDN in front of it answers when it fails (not 1min.ai's own JSON)."""
    if status == 522:
        page = (
            "<!DOCTYPE html><html><head><title>api.1min.ai | 522: Connection timed out</title></head>"
            "<body><h1>Connection timed out</h1><p>Error code 522</p>"
            "<p>Cloudflare Ray ID: 8f0e1d2c3b4a5968</p></body></html>"
        )
        return SimError(HTMLResponse(page, 522))
    if status == 502:
        page = (
            "<html><head><title>502 Bad Gateway</title></head>"
            "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
        )
        return SimError(HTMLResponse(page, 502))
    message = {500: "Internal server error", 503: "Service Unavailable"}.get(status, "Error")
    return SimError(JSONResponse({"statusCode": status, "message": message}, status))
