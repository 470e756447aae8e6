#!/usr/bin/env python3
"""Runs a command and prints one JSON line: wall seconds, peak RSS of the command (and its
children) in KiB from getrusage(RUSAGE_CHILDREN), and the exit code. Stdout of the command
is discarded; stderr is passed through.

Usage: measure.py -- CMD [ARGS...]
"""

import json
import resource
import subprocess
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall": round(wall, 3),
                "maxrss_kib": usage.ru_maxrss,
                "user": round(usage.ru_utime, 3),
                "sys": round(usage.ru_stime, 3),
                "code": proc.returncode,
            }
        )
    )


if __name__ == "__main__":
    main()
