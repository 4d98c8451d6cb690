"""The window's documents (issue 13): attaching files and folders to a chat or a collection,
indexing progress, and citations opened beside the chat."""
