"""The Discover page: Hub search results, model details with files, and downloads."""
