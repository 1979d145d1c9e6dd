"""Pure functions, no I/O: OpenAI requests → 1min.ai payloads, 1min.ai records/events → OpenAI objects."""
