"""The Hugging Face Hub: search, model cards, file listings, the token, downloads."""
