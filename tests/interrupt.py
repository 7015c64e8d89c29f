"""Kill a command part-way, as a crash or an impatient user would: the resume tests' common step."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def kill_after(command: list[str], folder: Path, pattern: str, cwd: Path, group: bool = False) -> None:
    """Run `command` and SIGKILL it once a file matching `pattern` appears in `folder` (it must not have finished by
    then: its table.json beside `folder` would say it did). group: kill its whole process group, as a terminal's
    Ctrl-C reaches every process of a job (a local Ray runtime's processes too)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
                               start_new_session=group)
    while process.poll() is None and not list(folder.glob(pattern)):
        time.sleep(0.05)
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (folder.parent / "table.json").exists(), "the command finished before it could be killed"
