"""The dialect-neutral chat core: every API dialect (chat completions, legacy completions, Responses,
Anthropic Messages) turns its request into a `CoreRequest`, and renders the core's `CoreResult` or
`CoreEvent` stream in its own wire format. See `types.py` for the contract."""
