"""Qt-free use cases shared by every front end (window, CLI, server): the chat session, library
import, quantize-then-register and registering downloads. Front ends > services > Store > engine."""
