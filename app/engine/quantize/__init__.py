"""Quantization in a child process, importance matrices, perplexity and the quality report."""
