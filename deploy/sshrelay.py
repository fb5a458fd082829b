"""ssh:// Docker endpoints for the docker SDK: a private unix socket here whose every
connection is `ssh HOST docker system dial-stdio` there, as the Docker CLI does it.

The SDK's own ssh transport either needs paramiko (which reads only ~/.ssh/known_hosts and
ignores the operator's ssh config) or shells out over pipes that its connection pool cannot
tell are dead: a request written into an ssh process that has gone ends the command with a bare
EPIPE, about one run in five here. Over a real socket a dropped connection is seen and
replaced, so the SDK talks to this relay's socket and ssh does the rest, with the operator's
ssh config, agent and known hosts. No password prompt (BatchMode): keys or an agent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

CHUNK = 65536
PR_SET_PDEATHSIG = 1


def ssh_argv(endpoint: str) -> list[str]:
    """`ssh ... HOST docker system dial-stdio` for an ssh://[user@]host[:port] endpoint."""
    return [*ssh_base(endpoint), "docker", "system", "dial-stdio"]


def ssh_base(endpoint: str, *options: str) -> list[str]:
    """`ssh [OPTIONS] ... -- HOST` for an ssh://[user@]host[:port] endpoint."""
    parts = urlsplit(endpoint)
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigError(
            f"{endpoint}: not an ssh:// endpoint (ssh://[user@]host[:port])",
            hint="e.g. ssh://deploy@app.example.com or ssh://root@10.0.0.7:2222",
        )
    argv = ["ssh", *options, "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"]
    if parts.username:
        argv += ["-l", parts.username]
    if parts.port:
        argv += ["-p", str(parts.port)]
    return [*argv, "--", parts.hostname]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when deploy dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Relay:
    """Listens on a 0700 folder's socket; each connection gets its own ssh process, all of
    them multiplexed over one ssh connection (a master the relay starts, so the handshake is
    paid once per host, not per Docker API connection)."""

    def __init__(self, endpoint: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="litedeploy-ssh-"))
        self.path = self.folder / "docker.sock"
        control = str(self.folder / "master")
        self.argv = [
            *ssh_base(endpoint, "-o", f"ControlPath={control}", "-o", "ControlMaster=no"),
            "docker",
            "system",
            "dial-stdio",
        ]
        self.last_error = ""  # what the last ssh that failed said, for messages
        # The master: no command, no terminal; a session's ssh falls back to a connection of
        # its own while the master is not up (or could not start).
        self.master = subprocess.Popen(
            ssh_base(endpoint, "-M", "-N", "-o", f"ControlPath={control}"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl, before exec
        )
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                relay.pipe(self.request)

        self.server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def pipe(self, conn: socket.socket) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH",)}
        proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C is the deploy's to handle, not ssh's
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr

        def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := conn.recv(CHUNK):
                    stdin.write(data)
                    stdin.flush()
            with contextlib.suppress(OSError):
                stdin.close()

        sender = threading.Thread(target=upstream, daemon=True)
        sender.start()
        with contextlib.suppress(OSError):
            while data := os.read(stdout.fileno(), CHUNK):
                conn.sendall(data)
        said = stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0 and said:  # kept before the client sees the connection end
            self.last_error = said.splitlines()[-1][:300]
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=5)

    def close(self) -> None:
        self.master.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.master.wait(timeout=10)
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)


_relays: dict[str, Relay] = {}
_lock = threading.Lock()


def relay_for(endpoint: str) -> Relay:
    """This process's relay for `endpoint` (one per endpoint, started on first use)."""
    with _lock:
        if endpoint not in _relays:
            _relays[endpoint] = Relay(endpoint)
        return _relays[endpoint]


def relays() -> list[Relay]:
    with _lock:
        return list(_relays.values())
