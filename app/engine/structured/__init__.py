"""Grammar-constrained generation: JSON schemas to GBNF, and the per-sequence grammar sampler."""
