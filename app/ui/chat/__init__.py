"""The Chat page: saved chats, a streaming transcript, a composer, and per-chat settings."""
