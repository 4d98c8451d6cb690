"""The Developer page: Hearth's local OpenAI-compatible server, run inside the window."""
