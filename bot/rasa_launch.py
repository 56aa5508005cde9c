"""Start `rasa run` with its API token taken from the environment (Rasa's Python 3.10 venv).

`rasa run --auth-token X` would show the token to every local user in the process list
(/proc/<pid>/cmdline); here it is added to sys.argv after the process started, from
RASA_AUTH_TOKEN, which only the process's owner can read. Refuses to start without it.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    token = os.environ.get("RASA_AUTH_TOKEN", "")
    if not token:
        sys.exit("RASA_AUTH_TOKEN is not set: Rasa's HTTP API would be open to anyone.")
    from rasa.__main__ import main as rasa_main

    sys.argv = rasa_argv(sys.argv[1:], token)
    rasa_main()


def rasa_argv(arguments: list[str], token: str) -> list[str]:
    """`rasa run` with the token; `=` keeps a token that starts with "-" (URL-safe
    base64 does, one time in 64) from being read as an option."""
    return ["rasa", "run", *arguments, f"--auth-token={token}"]


if __name__ == "__main__":
    main()
