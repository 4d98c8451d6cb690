"""Hearth's OpenAI-compatible local server: an ASGI app (FastAPI) in front of the ModelPool.

A front end like the window and the CLI: it asks `app.services.serving` which models exist and
the engine's pool to run them. `create_app` (app_factory) builds the app; `ServerRunner`
(runner) serves it on a thread. Beyond OpenAI's fields, requests accept LM Studio's:
``ttl`` (idle seconds before a just-in-time model unloads) and ``context_overflow_policy``
(``"stopAtLimit"``, the default: a prompt over the context is a 400 saying by how much;
``"rollingWindow"``: the oldest turns are dropped, the system prompt and last turn kept).
"""
