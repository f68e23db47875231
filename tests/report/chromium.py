"""A small Chrome DevTools Protocol client for tests: headless Chromium driven over a pipe, standard library only.

``chromium --headless --remote-debugging-pipe`` reads JSON commands from file descriptor 3 and writes answers and
events to descriptor 4, each message ended by a NUL byte. :class:`Browser` starts it with both pipes in place, opens
one page (``Target.createTarget``, then ``Target.attachToTarget`` with ``flatten``, so every page command carries the
session id), and offers what a page test needs: navigate and wait for the load event, evaluate JavaScript, press a key
as a person would (``Input.dispatchKeyEvent`` sends trusted events, so a focused ``<summary>`` opens on Enter and Tab
moves the focus), take a screenshot, and list what the page reported as errors: uncaught exceptions, ``console.error``
calls, and browser log entries of level error — Content-Security-Policy violations among them.

    with Browser(tmp_path) as b:
        b.navigate(page.as_uri())
        assert b.evaluate("document.title") == "..."
        assert b.errors() == []
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--mute-audio",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars")
KEYS = {"Enter": 13, "Tab": 9, " ": 32, "Escape": 27, "ArrowDown": 40, "ArrowUp": 38}


class CDPError(RuntimeError):
    """Chromium answered a command with an error, sent nothing in time, or exited."""


def available() -> Optional[str]:
    """Why Chromium cannot be driven here, or ``None`` when it can."""
    return None if CHROMIUM.exists() else f"needs Debian chromium at {CHROMIUM} (apt-get install -y chromium)"


def run_once(*args: str, cwd: Path, log: bool = False) -> subprocess.CompletedProcess:
    """One headless Chromium invocation without the DevTools pipe (``--dump-dom``, ``--screenshot=``), its own
    profile under ``cwd``; ``log`` adds the browser's log (console messages among it) to stderr."""
    flags = [*FLAGS, f"--user-data-dir={cwd / 'profile'}"] + (["--enable-logging=stderr", "--v=0"] if log else [])
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _high_fd(fd: int) -> int:
    # A copy numbered 10 or above, so that moving it to 3 or 4 in the child cannot overwrite the other pipe end.
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


class Browser:
    """Headless Chromium with one page, driven over the DevTools pipe. Use as a context manager."""

    def __init__(self, workdir: Path, *, width: int = 1280, height: int = 900, timeout: float = 30.0):
        self.timeout = timeout
        self.events: list[dict] = []
        self._next_id = 0
        self._buffer = b""
        commands_read, self._commands = os.pipe()  # we write commands; Chromium reads them as fd 3
        self._answers, answers_write = os.pipe()  # Chromium writes answers to fd 4; we read them
        commands_read, answers_write = _high_fd(commands_read), _high_fd(answers_write)
        self.log = Path(workdir) / "chromium.log"
        argv = [str(CHROMIUM), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={Path(workdir) / 'profile'}",
                f"--window-size={width},{height}", "about:blank"]
        # bash (dash takes one-digit descriptors only) puts the two pipe ends on 3 and 4 and closes the high copies
        # before Chromium starts: subprocess alone passes descriptors on under their own numbers.
        wrapper = f'exec "$@" 3<&{commands_read} 4>&{answers_write} {commands_read}<&- {answers_write}>&-'
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(["/bin/bash", "-c", wrapper, "bash", *argv], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            pass_fds=(commands_read, answers_write))
        os.close(commands_read)
        os.close(answers_write)
        self.session: Optional[str] = None

    # protocol ---------------------------------------------------------------------------------------------------------
    def send(self, method: str, params: Optional[dict] = None, *, session: bool = True) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode("utf-8") + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise CDPError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def wait_for(self, method: str, timeout: Optional[float] = None) -> dict:
        """The first event named ``method`` not yet seen (reading more messages until it comes)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and not event.get("_used"):
                    event["_used"] = True
                    return event
            seen = len(self.events)
            self._read(deadline - time.monotonic())

    def _read(self, timeout: Optional[float] = None) -> dict:
        deadline = time.monotonic() + (self.timeout if timeout is None else max(0.0, timeout))
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._answers], [], [], max(0.0, left))
            if not ready:
                raise CDPError(f"no message from Chromium within {self.timeout:.0f} s (log: {self.log})")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise CDPError(f"Chromium closed the pipe (exit code {self.process.poll()}; log: {self.log})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:  # an event, not an answer
            self.events.append(message)
        return message

    # a page ----------------------------------------------------------------------------------------------------------
    def open(self) -> "Browser":
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        return self

    def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its load event (the page's scripts have run). A move within the page (another
        ``#fragment`` of the same document) loads nothing and returns at once."""
        result = self.send("Page.navigate", {"url": url})
        if "errorText" in result:
            raise CDPError(f"{url}: {result['errorText']}")
        if result.get("loaderId"):
            self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values); a thrown error raises."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True, "userGesture": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]!r} threw: {result['exceptionDetails'].get('exception', {})}")
        return result.get("result", {}).get("value")

    def wait_until(self, expression: str, timeout: float = 5.0) -> Any:
        """The first truthy value of ``expression``, evaluated until ``timeout`` (for what the page does after an
        event it queued, such as ``hashchange``)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def press(self, key: str) -> None:
        """Press and release ``key`` on the focused element, as a keyboard does (trusted events)."""
        code = KEYS[key]
        text = {"Enter": "\r", " ": " "}.get(key)
        down = {"type": "keyDown", "key": key, "code": "Space" if key == " " else key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        self.send("Input.dispatchKeyEvent", {**down, **({"text": text} if text else {})})
        self.send("Input.dispatchKeyEvent", {**down, "type": "keyUp"})

    def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport, written to ``path``."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def errors(self) -> list[str]:
        """What the page reported as an error so far: uncaught exceptions, console.error, error log entries
        (a Content-Security-Policy violation is one)."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')} "
                           f"{p.get('exceptionDetails', {}).get('exception', {}).get('description', '')}")
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')}")
        return out

    # lifetime --------------------------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.send("Browser.close", session=False)
        except (CDPError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._commands, self._answers):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "Browser":
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Browser", "CDPError", "CHROMIUM", "available"]
