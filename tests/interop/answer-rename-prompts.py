#!/usr/bin/env python3
"""Run `drizzle-kit generate` (0.x) under a pseudo-terminal and answer its
"created or renamed?" prompts from a hints file.

drizzle-kit 0.31 has no non-interactive way to say "this is a rename": when a
column (or table) disappears and another appears, it asks on the terminal and
refuses to run without one. This helper starts the command in a pty, waits for
each such prompt, picks the option that matches a hint and presses Enter, so
that drizzle-kit itself still writes the migration files.

The hints file uses drizzle-kit 1.0's `--hints` format, so one file serves both
harnesses:

    [{"type": "rename", "kind": "column",
      "from": ["public", "products", "name"], "to": ["public", "products", "title"]}]

usage: answer-rename-prompts.py HINTS_JSON -- COMMAND [ARG...]

Exits with the command's exit code; exits 3 if a prompt has no matching hint
(nothing is guessed) and 4 on a time-out.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sys
import time
from typing import Any

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# "Is title column in products table created or renamed from another column?"
# "Is orders table created or renamed from another table?"
QUESTION = re.compile(r"Is \S+ (?:column in \S+ table|table) created or renamed from another")
ACK = re.compile(r"will be (?:renamed|created)")
OPTION = re.compile(r"^\s*(?:\u276f\s*)?([+~])\s+(.*?)\s*$")
DOWN = b"\x1b[B"
ENTER = b"\r"
TIMEOUT_S = 120.0
SETTLE_S = 0.4


def load_hints(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        hints = json.load(fh)
    return [h for h in hints if h.get("type") == "rename"]


def choose(options: list[tuple[str, str]], hints: list[dict[str, Any]]) -> int | None:
    """Index of the option "~ old > new" (drizzle-kit prints U+203A) named by a hint, or None."""
    for hint in hints:
        want = f"{hint['from'][-1]} \u203a {hint['to'][-1]}"
        for i, (mark, text) in enumerate(options):
            if mark == "~" and text.split("  ")[0].strip() == want:
                return i
            if mark == "~" and text.startswith(want + " "):
                return i
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    hints = load_hints(argv[1])
    cmd = argv[3:]

    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)

    raw = b""
    handled = 0  # offset in the plain-text transcript already answered
    awaiting_ack = None  # offset after which drizzle-kit confirms our answer
    last_data = time.monotonic()
    deadline = time.monotonic() + TIMEOUT_S
    status = None
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stderr.write("answer-rename-prompts: timed out\n")
            return 4
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the pty
                chunk = b""
            if not chunk:
                break
            raw += chunk
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            last_data = time.monotonic()
            continue
        # quiet for a moment: is there an unanswered prompt?
        if time.monotonic() - last_data < SETTLE_S:
            continue
        plain = ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "\n")
        if awaiting_ack is not None:
            # the prompt re-renders after each key: wait for its final answer line
            ack = ACK.search(plain, awaiting_ack)
            if ack:
                handled, awaiting_ack = ack.end(), None
            elif time.monotonic() - last_data > 10:
                sys.stderr.write("\nanswer-rename-prompts: drizzle-kit did not take the answer\n")
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return 3
            continue
        match = QUESTION.search(plain, handled)
        if not match:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
            continue
        lines = plain[match.end() :].split("\n")[1:]
        options = []
        for line in lines:
            m = OPTION.match(line)
            if m:
                options.append((m.group(1), m.group(2)))
            elif options and line.strip():
                break
        index = choose(options, hints)
        if index is None:
            question = match.group(0)
            sys.stderr.write(f"\nanswer-rename-prompts: no hint for {question!r}: {options}\n")
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return 3
        os.write(fd, DOWN * index)
        time.sleep(0.2)
        os.write(fd, ENTER)
        awaiting_ack = match.end()
        last_data = time.monotonic()

    if status is None:
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
