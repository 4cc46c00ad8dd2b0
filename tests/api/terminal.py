"""Run a program on a terminal of its own (a pty) and type answers at its prompts, as a
person would: qun and age read passwords and passphrases from /dev/tty, not stdin."""
import os
import pty
import re
import select
import signal
import time


def on_pty(argv, answers, env=None, timeout=60, enter="\n"):
    """Run argv on a new pty; answers is a list of (prompt, text): prompt is a regular
    expression searched in what the terminal showed since the last answer, and each pair
    is typed once, in whatever order the prompts come.  A program still running at the
    deadline is killed, so a prompt nobody answers fails the test instead of hanging it.
    Returns (exit code, everything the terminal showed, as bytes)."""
    pid, fd = pty.fork()
    if pid == 0:
        if env is None:
            os.execv(argv[0], argv)
        os.execve(argv[0], argv, env)
    shown, pending, mark, deadline = b"", list(answers), 0, time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        text = shown[mark:].decode(errors="replace")
        for item in list(pending):
            if re.search(item[0], text):
                pending.remove(item)
                mark = len(shown)
                os.write(fd, (item[1] + enter).encode())
                break
    status = None
    while status is None and time.time() < deadline + 5:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
        else:
            time.sleep(0.05)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown
