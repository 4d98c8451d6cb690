"""The text of My Models' details pane for the selected model (or for none)."""

from __future__ import annotations

from pathlib import Path

from app.engine.gguf.info import format_model_info
from app.engine.inference.arch_support import architecture_supported, unsupported_message
from app.engine.units import human_bytes
from app.models.records import LineageRecord, ModelFileRecord
from app.services.projectors import ProjectorChoice

_EMPTY_HINT = (
    "No models yet.\n\nImport a GGUF file or a folder of them, or let Hearth find the models "
    "LM Studio or the Hugging Face cache already keep on this computer. Files are indexed where "
    "they are, never copied."
)



def projector_line(choice: ProjectorChoice | None) -> str:
    """The details pane's line about the model's vision projector ("" when it has none)."""
    if choice is None or (choice.path is None and not choice.chosen):
        return ""
    if choice.path is None:
        return "Vision projector: none (you chose to load this model as text only)"
    how = "your choice" if choice.chosen else "paired automatically from its folder"
    return (f"Vision projector: {choice.path.name} ({human_bytes(choice.size)}), {how}; "
            "the model reads images")


def details_text(record: ModelFileRecord | None, lineage: LineageRecord | None,
                 library_empty: bool, projector: ProjectorChoice | None = None) -> str:
    """Metadata of `record`, led by where it came from, its vision projector and why it may
    not load."""
    if record is None:
        return _EMPTY_HINT if library_empty else "Select a model to see details."
    text = format_model_info(record.info)
    line = projector_line(projector)
    if line:
        text = f"{line}\n\n{text}"
    if lineage is not None:
        text = (f"Quantized from {Path(lineage.source_path).name} as {lineage.quant_type}"
                f" ({lineage.source_path})\n\n{text}")
    if not Path(record.path).is_file():
        text = f"The file is missing: {record.path}\n\n{text}"
    if not architecture_supported(record.architecture):
        text = f"Cannot be loaded: {unsupported_message(record.architecture)}.\n\n{text}"
    return text
