"""Why a JSON schema cannot become a grammar; each message is fit for a user or an API client."""

from __future__ import annotations


class InvalidSchema(ValueError):
    """Not a usable JSON schema (malformed, a $ref that points nowhere, unsatisfiable)."""


class SchemaTooComplex(InvalidSchema):
    """Over the size, depth or repetition limits that keep conversion and sampling bounded."""


class UnsupportedSchema(InvalidSchema):
    """Keywords the grammar cannot honour. ``features``: where each is, as a dotted path ending
    in the keyword (``properties.age.multipleOf``); ``reasons``: a short why for each."""

    def __init__(self, features: list[str], reasons: list[str] | None = None) -> None:
        self.features = list(features)
        self.reasons = list(reasons or [""] * len(features))
        pairs = zip(self.features, self.reasons, strict=True)
        listed = "; ".join(f"{f} ({r})" if r else f for f, r in pairs)
        super().__init__("The schema uses features that constrained generation cannot honour, "
                         f"so the reply could break them: {listed}.")
