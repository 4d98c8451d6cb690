"""Running models: llama.cpp runtime, the engine host thread, prompt formats and the chat-template
sandbox, reasoning and stop text, the context window."""
