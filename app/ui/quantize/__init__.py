"""Quantize a model from the GUI and read what it cost: the dialog, the report view, the chart."""
