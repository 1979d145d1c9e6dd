"""A local stand-in for 1min.ai, built from ../shared/reference/onemin-api.md."""
