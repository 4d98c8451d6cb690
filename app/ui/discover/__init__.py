"""The Discover page's parts: search results, model details with files, and downloads."""
