"""/v1/files end to end: upload, list, retrieve, byte-exact content, delete, key isolation, limits."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest

from onemin_relay.serving import BackgroundServer
from tests.harness import KEY_A, KEY_B, SimulatorHandle
from tests.openapi_schema import assert_matches_schema

PURPOSES: list[Literal["assistants", "user_data", "vision"]] = [
    "assistants",
    "user_data",
    "assistants",
    "vision",
    "assistants",
]
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 1200 + b"\n%%EOF\n"  # binary, ~300 kB


@pytest.fixture
def bob(relay_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{relay_url}/v1", api_key=KEY_B, max_retries=0) as sdk:
        yield sdk


def test_upload_retrieve_content_delete(client: openai.OpenAI, sim: SimulatorHandle) -> None:
    created = client.files.create(file=("report.pdf", PDF, "application/pdf"), purpose="assistants")
    assert_matches_schema("OpenAIFile", created.model_dump(exclude_none=True))
    assert created.id.startswith("file-")
    assert (created.filename, created.bytes, created.purpose) == ("report.pdf", len(PDF), "assistants")
    assert created.expires_at is not None
    assert created.expires_at > created.created_at
    [upload] = [entry for entry in sim.requests() if entry["path"] == "/api/assets"]
    assert upload["multipart"][0]["filename"] == "report.pdf"

    assert client.files.retrieve(created.id) == created
    content = client.files.with_raw_response.content(created.id)
    assert content.content == PDF
    assert content.headers["content-type"] == "application/pdf"

    deleted = client.files.delete(created.id)
    assert_matches_schema("DeleteFileResponse", deleted.model_dump(exclude_none=True))
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_list_filters_orders_and_pages(start_relay: Callable[..., BackgroundServer]) -> None:
    relay = start_relay()  # a relay of its own: an empty file list to start from
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        ids = [
            sdk.files.create(file=(f"n{index}.txt", f"note {index}".encode()), purpose=purpose).id
            for index, purpose in enumerate(PURPOSES)
        ]
        page = sdk.files.list(limit=2, order="asc")
        assert_matches_schema("ListFilesResponse", page.model_dump(exclude_none=True))
        assert [item.id for item in page.data] == ids[:2]
        assert page.has_more is True
        assert [item.id for item in page.get_next_page().data] == ids[2:4]
        assert [item.id for item in sdk.files.list(limit=2, order="asc")] == ids  # auto-paging
        assert [item.id for item in sdk.files.list()] == ids[::-1]
        assigned = sdk.files.list(purpose="assistants", order="asc")
        assert [item.id for item in assigned] == [ids[0], ids[2], ids[4]]
        after = sdk.files.list(after=ids[1], order="asc", limit=10)
        assert [item.id for item in after.data] == ids[2:]
        assert after.has_more is False


def test_empty_list(start_relay: Callable[..., BackgroundServer]) -> None:
    relay = start_relay()
    response = httpx.get(f"{relay.url}/v1/files", headers={"Authorization": f"Bearer {KEY_A}"})
    assert response.json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_one_key_never_sees_another_keys_files(client: openai.OpenAI, bob: openai.OpenAI) -> None:
    mine = client.files.create(file=("secret.txt", b"alice only"), purpose="user_data")
    for attempt in (bob.files.retrieve, bob.files.content, bob.files.delete):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt(mine.id)
        assert caught.value.status_code == 404  # not 403: ids cannot be probed
    assert mine.id not in [item.id for item in bob.files.list()]
    assert client.files.content(mine.id).content == b"alice only"  # Bob's delete did nothing


def test_expires_after_shortens_the_retention(client: openai.OpenAI) -> None:
    created = client.files.create(
        file=("short.txt", b"brief"), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600


@pytest.mark.parametrize(
    ("files", "data", "param"),
    [
        ({"file": ("a.txt", b"x")}, {"purpose": "training"}, "purpose"),
        ({"file": ("a.txt", b"x")}, {}, "purpose"),
        ({}, {"purpose": "assistants"}, "file"),
        ({"file": ("no_extension", b"x")}, {"purpose": "assistants"}, "file"),
        ({"file": ("empty.txt", b"")}, {"purpose": "assistants"}, "file"),
        ({"file": ("notes.md", b"# markdown")}, {"purpose": "assistants"}, "file"),  # refused by 1min.ai
        (
            {"file": ("a.txt", b"x")},
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
            "expires_after.seconds",
        ),
    ],
)
def test_upload_refusals_name_the_param(
    relay_url: str, files: dict[str, Any], data: dict[str, str], param: str
) -> None:
    files = files or {"other": ("x.bin", b"x")}
    response = httpx.post(
        f"{relay_url}/v1/files", files=files, data=data, headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("query", "param"), [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order")]
)
def test_list_refusals(relay_url: str, query: dict[str, str], param: str) -> None:
    response = httpx.get(f"{relay_url}/v1/files", params=query, headers={"Authorization": f"Bearer {KEY_A}"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_unknown_and_absurd_ids_are_404s(client: openai.OpenAI) -> None:
    for file_id in ("file-doesnotexist", "x" * 5000):
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve(file_id)


def test_files_need_a_key(relay_url: str) -> None:
    assert httpx.get(f"{relay_url}/v1/files").status_code == 401


def test_file_over_the_limit_is_a_413(
    start_relay: Callable[..., BackgroundServer], sim: SimulatorHandle
) -> None:
    relay = start_relay(max_file_upload_bytes=1000)
    with openai.OpenAI(base_url=f"{relay.url}/v1", api_key=KEY_A, max_retries=0) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.files.create(file=("big.pdf", PDF), purpose="assistants")
        assert caught.value.status_code == 413
        assert sdk.files.create(file=("small.txt", b"fits"), purpose="assistants").bytes == 4
    assert len([entry for entry in sim.requests() if entry["path"] == "/api/assets"]) == 1


def _spooled_files() -> set[str]:
    """Temporary files this process holds open or has left in the temp directory."""
    found = {entry.name for entry in Path(tempfile.gettempdir()).iterdir() if entry.name.startswith("tmp")}
    fd_dir = Path("/proc/self/fd")
    for fd in fd_dir.iterdir() if fd_dir.exists() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if Path(target.removesuffix(" (deleted)")).parent == Path(tempfile.gettempdir()):
            found.add(target)  # what SpooledTemporaryFile rolls over to (nested dirs are other tests' data)
    return found


def test_no_temporary_files_are_left_behind(
    client: openai.OpenAI, start_relay: Callable[..., BackgroundServer]
) -> None:
    big = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)  # over the 1 MB spool: goes to a temporary file
    before = _spooled_files()
    client.files.create(file=("big.pdf", big), purpose="assistants")  # success
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("big.md", big), purpose="assistants")  # refused upstream
    small = start_relay(max_file_upload_bytes=2 * 1024 * 1024)
    too_big = httpx.post(
        f"{small.url}/v1/files",
        files={"file": ("big.pdf", big)},
        data={"purpose": "assistants"},
        headers={"Authorization": f"Bearer {KEY_A}"},
    )
    assert too_big.status_code == 413  # refused
    assert _spooled_files() <= before


@pytest.mark.parametrize(
    ("name", "sent_as"),
    [("отчёт.pdf", "upload.pdf"), ("年度 報告.PDF", "upload.pdf"), ("../../etc/résumé.pdf", "r_sum.pdf")],
)
def test_names_in_any_script_keep_their_extension(
    client: openai.OpenAI, sim: SimulatorHandle, name: str, sent_as: str
) -> None:
    created = client.files.create(file=(name, PDF, "application/pdf"), purpose="user_data")
    assert created.filename == name
    [upload] = [entry for entry in sim.requests() if entry["path"] == "/api/assets"]
    assert upload["multipart"][0]["filename"] == sent_as  # a tame name with the type's extension
    assert client.files.content(created.id).content == PDF


def test_content_lost_upstream_is_a_502_not_a_missing_model(
    client: openai.OpenAI, relay_url: str, sim: SimulatorHandle
) -> None:
    created = client.files.create(file=("a.txt", b"hello"), purpose="user_data")
    sim.reset()  # the simulator forgets every stored asset: its CDN answers 404
    response = httpx.get(
        f"{relay_url}/v1/files/{created.id}/content", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (None, "upstream_error")
    assert "no longer serves" in error["message"]


def test_head_on_content_answers_without_a_download(
    client: openai.OpenAI, relay_url: str, sim: SimulatorHandle
) -> None:
    created = client.files.create(file=("report.pdf", PDF, "application/pdf"), purpose="assistants")
    response = httpx.head(
        f"{relay_url}/v1/files/{created.id}/content", headers={"Authorization": f"Bearer {KEY_A}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(PDF))
    assert not [entry for entry in sim.requests() if entry["path"].startswith("/cdn/")]
