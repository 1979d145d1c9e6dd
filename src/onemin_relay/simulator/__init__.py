"""A local stand-in for 1min.ai, built from docs/onemin-api.md (1min.ai's API as far as it is known).

It powers `1min-relay demo`, the test suite and the benchmarks:

- `app.create_simulator_app(config)` — the ASGI app (API under `/api/…`, catalogue at `/models`, stored
  files at `/cdn/<key>` and pre-signed look-alikes at `/s3/asset.1min.ai/<key>?X-Amz-…`).
- `config.SimulatorConfig` — keys, limits and one switch per behaviour the reference leaves open.
- `answers.expected_answer(prompt, …)` — the exact text any chat prompt gets.
- Faults: `name[=value]` items (see `faults.FAULTS`), switched on by the `X-Sim-Fault` header, a
  `[[sim:name[=value],…]]` magic word in any text of `promptObject`, `SimulatorConfig.faults`, or
  `POST /_sim/faults {"fault", "times", "path"}` for the next N calls.
- Control API: `POST /_sim/config` (partial update), `GET /_sim/config`, `POST /_sim/reset`,
  `GET /_sim/faults`, `GET /_sim/requests[?path=prefix]` (calls as received, keys only as hashes).
"""
