"""1min-relay: an OpenAI-compatible API in front of 1min.ai."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("onemin-relay")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

USER_AGENT = f"1min-relay/{__version__} (+https://github.com/1min-relay)"
