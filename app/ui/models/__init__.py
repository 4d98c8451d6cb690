"""My Models page: the library table, its details, import, find, load, delete and quantize."""
