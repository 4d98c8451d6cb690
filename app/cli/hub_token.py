"""`hearth token set|clear|status`: the optional Hugging Face token for gated models.

Not named token.py: that would shadow the standard library's `token` module whenever this
folder is first on sys.path.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser(
        "token", help="set, clear or check the Hugging Face token for gated models",
        description="Store the optional Hugging Face token (system keyring, else a file only "
        "you can read). `set` reads it from the terminal or standard input.")
    token.add_argument("action", choices=["set", "clear", "status"])
    token.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import getpass

    from app.engine.hub.hf_token import clear_token, get_token, login_still_applies, set_token

    if args.action == "set":
        # Read from the terminal (or stdin), never from argv, which other users can see in ps.
        token = (getpass.getpass("Hugging Face token: ") if sys.stdin.isatty()
                 else sys.stdin.readline()).strip()
        if not token:
            print("hearth token: no token given", file=sys.stderr)
            return 1
        where = set_token(token)
        print(f"Token saved ({'system keyring' if where == 'keyring' else 'private file'}).")
    elif args.action == "clear":
        clear_token()
        print("Token removed.")
        still = login_still_applies()
        if still:
            print(f"Note: {still}.")
    else:
        print("Token: set" if get_token() else "Token: not set")
    return 0
