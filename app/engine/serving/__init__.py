"""Serving many: several loaded models, each decoding several sequences in one batch."""
