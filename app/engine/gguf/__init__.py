"""Reading GGUF files: the header (bounded), model info, file-name rules, quant types."""
