"""OpenAI-facing HTTP routes, one module per resource."""
