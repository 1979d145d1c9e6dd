"""Helpers for tests of the operators' side: relays in key mode, and the admin API."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from onemin_relay.serving import BackgroundServer

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
CHEAP_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}


def admin(relay: BackgroundServer, token: str = ADMIN_TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=relay.url, headers=headers, timeout=30)


def create_key(relay: BackgroundServer, name: str = "alice", **spec: Any) -> dict[str, Any]:
    with admin(relay) as http:
        answer = http.post("/admin/keys", json={"name": name, **spec})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def sdk(relay: BackgroundServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{relay.url}/v1", api_key=key, max_retries=0)


def chat(relay: BackgroundServer, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{relay.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={**CHEAP_CHAT, **body},
        timeout=30,
    )
