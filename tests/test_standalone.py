"""A fresh clone builds and tests on its own: nothing in the repository needs a path outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.openapi_schema import assert_matches_anthropic_schema, assert_matches_schema, vendor_spec

REPO = Path(__file__).resolve().parents[1]

# Absolute paths into a particular machine, and the team's reference folder beside the checkout.
_MACHINE_PATH = re.compile(r"(?<![\w.:/~-])/(?:work|home|root|Users|mnt|opt)/")
_SHARED_FOLDER = re.compile(r"\bshared/(?:reference|design|bench|hooks)\b")
# A relative path that climbs: `../x`, `../../x/y` (resolved from the file's folder). Python sources are
# exempt (their tests send `../../etc` as hostile input); there `Path(__file__).parents[n]` is what climbs.
_CLIMBING_PATH = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.-]*)")
_FILE_PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    files = []
    for name in filter(None, listed.split("\0")):
        path = REPO / name
        if path.is_file() and path.suffix not in {".png", ".mp3", ".wav", ".lock"}:
            files.append(path)
    return files


def _outside_references(path: Path, text: str) -> list[str]:
    found = [m.group(0) for m in _MACHINE_PATH.finditer(text)]
    found += [m.group(0) for m in _SHARED_FOLDER.finditer(text)]
    if path.suffix == ".py":
        depth = len(path.relative_to(REPO).parts) - 1
        found += [m.group(0) for m in _FILE_PARENTS.finditer(text) if int(m.group(1)) > depth]
        return found
    for match in _CLIMBING_PATH.finditer(text):
        target = (path.parent / match.group(1) / match.group(2)).resolve()
        if not target.is_relative_to(REPO):
            found.append(match.group(0))
    return found


def test_no_file_in_the_repository_refers_to_a_path_outside_it() -> None:
    offenders = {}
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue  # this file spells the patterns out
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if found := _outside_references(path, text):
            offenders[str(path.relative_to(REPO))] = sorted(set(found))
    assert offenders == {}


@pytest.mark.parametrize(
    "text",
    ["see ../shared/reference/onemin-api.md", "open /work/main/x", "shared/reference/x", "../../elsewhere"],
)
def test_the_scan_catches_each_kind_of_outside_path(text: str) -> None:
    assert _outside_references(REPO / "docs" / "x.md", text)


def test_the_scan_catches_python_climbing_out_of_the_repository() -> None:
    climbing = 'SPEC = Path(__file__).resolve().parents[2] / "shared"'
    assert _outside_references(REPO / "tests" / "x.py", climbing)
    assert _outside_references(REPO / "tests" / "x.py", climbing.replace("[2]", "[1]")) == []


@pytest.mark.parametrize("text", ["[design](design.md)", "see ../README.md", "`/v1/models`", "https://a.b/c"])
def test_the_scan_leaves_paths_inside_the_repository_alone(text: str) -> None:
    assert _outside_references(REPO / "docs" / "x.md", text) == []


def test_the_vendor_documents_come_from_the_dev_dependency() -> None:
    assert vendor_spec("openai")["info"]["title"] == "OpenAI API"
    assert "/chat/completions" in vendor_spec("openai")["paths"]
    assert "/v1/messages" in vendor_spec("anthropic")["paths"]
    assert_matches_schema("Model", {"id": "m", "object": "model", "created": 0, "owned_by": "x"})


def test_anthropic_answers_can_be_checked_against_anthropic_s_document() -> None:
    usage_fields = vendor_spec("anthropic")["components"]["schemas"]["Usage"]["required"]
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi", "citations": None}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "stop_details": None,
        "container": None,
        # The document requires every usage field (most nullable): an answer must send them all.
        "usage": {**dict.fromkeys(usage_fields), "input_tokens": 3, "output_tokens": 1},
    }
    assert_matches_anthropic_schema("Message", message)
    with pytest.raises(jsonschema.ValidationError):
        assert_matches_anthropic_schema("Message", {**message, "role": "user"})


def test_every_test_has_a_time_limit(pytestconfig: pytest.Config) -> None:
    """A hang fails its test with a traceback (pytest-timeout) instead of stalling CI for good."""
    assert float(pytestconfig.getini("timeout")) > 0
