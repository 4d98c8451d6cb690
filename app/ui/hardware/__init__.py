"""Hardware page: what this computer offers a local model, and live CPU / RAM / GPU charts."""
