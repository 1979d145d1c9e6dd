"""Simulator: the Asset API, the CDN route and the signed `temporaryUrl` look-alike (reference §6, §1.1)."""

from __future__ import annotations

import re

import httpx
import pytest

from onemin_relay.simulator.assets import AssetStore
from tests.harness import SimulatorFactory as Factory

KEY_FORMAT = r"\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}_\d{3}_"


async def test_upload_reply_matches_the_reference(api: httpx.AsyncClient) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    response = await api.post("/api/assets", files={"asset": ("photo.png", data, "image/png")})

    assert response.status_code == 200
    body = response.json()
    asset, content = body["asset"], body["fileContent"]
    assert set(body) == {"asset", "fileContent"}
    assert set(asset) == {  # every field of the §6.2 example
        "fieldname", "originalname", "encoding", "mimetype", "size", "bucket", "key", "acl", "contentType",
        "contentDisposition", "contentEncoding", "storageClass", "serverSideEncryption", "metadata",
        "location", "etag",
    }  # fmt: skip
    assert set(content) == {"uuid", "path", "type", "name", "content", "status", "metadata", "createdAt"}
    multer = {"fieldname", "originalname", "encoding", "mimetype"}
    assert set(asset["metadata"]) == {"team-id", "user-id", *multer}
    assert re.fullmatch(f"images/{KEY_FORMAT}photo.png", asset["key"])
    assert asset["key"] == content["path"]
    assert content["name"] == asset["key"].split("/", 1)[1]
    assert content["type"] == "png"
    assert content["status"] == "ACTIVE"
    assert content["content"] == ""
    assert content["metadata"] == {"token": 0, "character": 0}
    assert re.fullmatch(r"[0-9a-f-]{36}", content["uuid"])
    assert asset["fieldname"] == "asset"
    assert asset["originalname"] == "photo.png"
    assert asset["mimetype"] == "image/png"
    assert asset["size"] == len(data)
    assert asset["bucket"] == "asset.1min.ai"
    assert asset["acl"] == "private"
    assert asset["location"] == f"https://asset.1min.ai.s3.us-east-1.amazonaws.com/{asset['key']}"
    assert asset["metadata"]["originalname"] == "photo.png"
    assert re.fullmatch(r'"[0-9a-f]{32}"', asset["etag"])


@pytest.mark.parametrize(
    ("filename", "folder"),
    [("a.jpg", "images"), ("b.webp", "images"), ("talk.mp3", "audios"), ("talk.m4a", "audios"),
     ("talk.wav", "audios"), ("clip.mp4", "videos"), ("paper.pdf", "documents"), ("notes.txt", "documents")],
)  # fmt: skip
async def test_folders_by_media_type(api: httpx.AsyncClient, filename: str, folder: str) -> None:
    response = await api.post("/api/assets", files={"asset": (filename, b"data", "application/octet-stream")})
    assert response.status_code == 200
    assert response.json()["asset"]["key"].startswith(f"{folder}/")


async def test_text_documents_report_their_characters(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/assets", files={"asset": ("notes.txt", "héllo wörld".encode(), "text/plain")}
    )
    assert response.json()["fileContent"]["metadata"] == {"token": 3, "character": 11}


@pytest.mark.parametrize("filename", ["notes.md", "noextension", ".png", "script.exe"])
async def test_unsupported_file_types(api: httpx.AsyncClient, filename: str) -> None:
    response = await api.post("/api/assets", files={"asset": (filename, b"data", "text/plain")})
    assert response.status_code == 400
    assert response.json() == {
        "errorCode": "UNSUPPORTED_FILE_TYPE",
        "message": "The file type isn't supported",
    }


async def test_the_part_must_be_named_asset(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/assets", files={"file": ("photo.png", b"data", "image/png")})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "INVALID_REQUEST"


async def test_upload_needs_a_key(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/assets", files={"asset": ("a.png", b"x", "image/png")}, headers={"API-KEY": ""}
    )
    assert response.status_code == 401


async def test_oversized_upload_is_refused(make_api: Factory) -> None:
    api = make_api(asset_max_bytes=1000)
    response = await api.post("/api/assets", files={"asset": ("a.png", b"x" * 5000, "image/png")})
    assert response.status_code == 413


async def test_hostile_file_names_become_safe_keys(api: httpx.AsyncClient) -> None:
    name = "../../etc/pa ss?wd#x.png"
    response = await api.post("/api/assets", files={"asset": (name, b"x", "image/png")})
    key = response.json()["asset"]["key"]
    assert re.fullmatch(f"images/{KEY_FORMAT}pa_ss_wd_x.png", key)
    assert (await api.get(f"/cdn/{key}")).content == b"x"


async def test_cdn_serves_the_stored_bytes(api: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 10
    key = (await api.post("/api/assets", files={"asset": ("blob.mp3", data, "audio/mpeg")})).json()["asset"][
        "key"
    ]

    served = await api.get(f"/cdn/{key}", headers={"API-KEY": ""})  # public: no key needed
    head = await api.head(f"/cdn/{key}")
    missing = await api.get("/cdn/images/2020_01_01_00_00_00_000_none.png")

    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-length"] == str(len(data))
    assert head.status_code == 200
    assert head.content == b""
    assert missing.status_code == 404
    assert "NoSuchKey" in missing.text


async def test_signed_urls_are_checked(api: httpx.AsyncClient) -> None:
    body = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "promptObject": {"prompt": "apple"}}
    record = (await api.post("/api/features", json=body)).json()["aiRecord"]
    url = record["temporaryUrl"]
    key = record["aiRecordDetail"]["resultObject"][0]

    assert url.startswith(f"http://sim.test/s3/asset.1min.ai/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&")
    for part in (
        "X-Amz-Credential=",
        "X-Amz-Date=",
        "X-Amz-Expires=",
        "X-Amz-Signature=",
        "X-Amz-SignedHeaders=host",
    ):
        assert part in url
    good = await api.get(url)
    tampered = await api.get(re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=" + "0" * 64, url))
    assert good.status_code == 200
    assert good.content.startswith(b"\x89PNG")
    assert tampered.status_code == 403
    assert "AccessDenied" in tampered.text


async def test_public_base_url_overrides_the_request_host(make_api: Factory) -> None:
    api = make_api(public_base_url="https://sim.example/")
    body = {"type": "IMAGE_GENERATOR", "model": "dall-e-3", "promptObject": {"prompt": "apple"}}
    record = (await api.post("/api/features", json=body)).json()["aiRecord"]
    assert record["temporaryUrl"].startswith("https://sim.example/s3/asset.1min.ai/images/")


def test_store_evicts_the_oldest_files_past_its_size_bound() -> None:
    store = AssetStore(max_bytes=250)
    keys = [store.new_key("images", f"f{index}.png") for index in range(3)]
    for key in keys:
        store.put(key, b"x" * 100, "image/png")
    assert store.get(keys[0]) is None
    assert store.get(keys[1]) is not None
    assert store.get(keys[2]) is not None


def test_references_resolve_from_keys_and_urls() -> None:
    store = AssetStore(max_bytes=1000)
    stored = store.put("images/2026_01_01_00_00_00_000_a.png", b"x", "image/png")
    for reference in (
        stored.key,
        f"development/{stored.key}",
        f"https://asset.1min.ai/{stored.key}",
        f"http://127.0.0.1:9/cdn/{stored.key}",
        f"https://s3.us-east-1.amazonaws.com/asset.1min.ai/{stored.key}?X-Amz-Signature=abc",
    ):
        assert store.resolve(reference) is stored, reference
    hostile: tuple[object, ...] = ("images/other.png", "", "/etc/passwd", None, 42, "images/" + "a" * 5000)
    for bad in hostile:
        assert store.resolve(bad) is None
