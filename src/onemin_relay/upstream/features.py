"""The 1min.ai features the relay serves, and the names `/v1/models` gives them (`features`, `?feature=`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

CHAT_FEATURE = "UNIFY_CHAT_WITH_AI"
# Every upstream feature the relay serves, in the order /v1/models lists them, with its name there.
FEATURE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        CHAT_FEATURE: "chat",
        "IMAGE_GENERATOR": "image_generation",
        "IMAGE_VARIATOR": "image_variation",
        "IMAGE_EDITOR": "image_edit",
        "IMAGE_INPAINTER": "image_inpainting",
        "TEXT_TO_SPEECH": "speech",
        "SPEECH_TO_TEXT": "transcription",
        "AUDIO_TRANSLATOR": "translation",
    }
)
SERVED_FEATURES: tuple[str, ...] = tuple(FEATURE_NAMES)
# Shorthands a filter may use for a group of features.
_GROUPS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "image": frozenset(feature for feature, name in FEATURE_NAMES.items() if name.startswith("image_")),
        "audio": frozenset({"TEXT_TO_SPEECH", "SPEECH_TO_TEXT", "AUDIO_TRANSLATOR"}),
    }
)
FILTER_NAMES: tuple[str, ...] = (*FEATURE_NAMES.values(), *_GROUPS)


def features_named(names: Iterable[str]) -> frozenset[str]:
    """The upstream features meant by `names`: a name above (`chat`), a group (`image`, `audio`) or an
    upstream feature type (`IMAGE_GENERATOR`), any case. ValueError names the first unknown one."""
    by_name = {name: frozenset({feature}) for feature, name in FEATURE_NAMES.items()}
    by_name |= {feature.lower(): frozenset({feature}) for feature in FEATURE_NAMES}
    by_name |= _GROUPS
    found: frozenset[str] = frozenset()
    for name in names:
        features = by_name.get(name.strip().lower())
        if features is None:
            expected = ", ".join(FILTER_NAMES)
            raise ValueError(f"unknown feature {name.strip()[:50]!r}; expected one of {expected}")
        found |= features
    return found
