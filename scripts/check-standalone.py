#!/usr/bin/env python3
"""Fails when a tracked file reads from or points at a folder outside the repository.

A user's clone has nothing beside it, so code, scripts, docs and configuration may only name
paths inside it. For every relative path that climbs (`../x`, `$root/../x`, `../..`) the check
tries each folder from the file's own up to the repository root as the starting point (a
script's, a crate's or the root's working directory): the path passes when one of them lands
inside the repository on something that exists there. Absolute paths into the development
machine's workspace (`/work/`) and its tool library (`.library`) never pass.

Dated history in perf/RESULTS.md is left out: it records where figures came from at the time.

    scripts/check-standalone.py            # exit 1 and one line per finding when any
"""

import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
# This file names the patterns it looks for, so it is left out too.
EXEMPT = {"perf/RESULTS.md", "Cargo.lock", "scripts/check-standalone.py"}
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+\.?\.?[\w.-]*)")
OUTSIDE = re.compile(r"(?<![\w.-])(/work/[\w.-]+|\.library\b)")


def tracked_files():
    out = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-z"], check=True, capture_output=True
    ).stdout
    return [p for p in out.decode().split("\0") if p and p not in EXEMPT]


def bases(path):
    """The file's folder and each folder above it, up to the root."""
    folder = os.path.dirname(os.path.join(ROOT, path))
    while True:
        yield folder
        if folder == ROOT:
            return
        folder = os.path.dirname(folder)


def lands_inside(path, token):
    """True when `token`, started from some folder of `path`, names something in the repo."""
    climb = re.match(r"(?:\.\./)*(?:\.\.$)?", token).group(0)
    first = token[len(climb) :].split("/")[0]
    for base in bases(path):
        target = os.path.normpath(os.path.join(base, climb))
        inside = target == ROOT or target.startswith(ROOT + os.sep)
        if inside and (not first or os.path.exists(os.path.join(target, first))):
            return True
    return False


def findings():
    for path in tracked_files():
        try:
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                lines = f.readlines()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the working tree
        for number, line in enumerate(lines, 1):
            for match in CLIMB.finditer(line):
                if not lands_inside(path, match.group(1)):
                    yield f"{path}:{number}: {match.group(1)} leaves the repository"
            for match in OUTSIDE.finditer(line):
                yield f"{path}:{number}: {match.group(1)} is outside the repository"


def main():
    found = list(findings())
    for line in found:
        print(f"check-standalone: {line}", file=sys.stderr)
    if found:
        print(
            f"check-standalone: {len(found)} reference(s) to folders outside the repository; "
            "a user's clone has nothing beside it",
            file=sys.stderr,
        )
        return 1
    print("check-standalone: no tracked file points outside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
