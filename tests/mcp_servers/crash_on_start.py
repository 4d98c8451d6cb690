"""An MCP server that fails before it can answer (a missing API key, say)."""

import sys

print("error: DEMO_API_KEY is not set", file=sys.stderr, flush=True)
sys.exit(2)
