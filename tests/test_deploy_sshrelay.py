"""The ssh:// relay (sshrelay.py): each connection to its socket is its own `ssh ... docker
system dial-stdio`, bytes both ways; ssh's own words kept when it fails. A stand-in `ssh` on
PATH plays the remote end (the Docker tests reach real engines over a real sshd)."""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

from deploy.errors import ConfigError
from deploy.sshrelay import Relay, ssh_argv

# Echoes stdin back upper-cased, after recording its argv; or fails as ssh does.
FAKE_SSH = f"""#!{sys.executable}
import os, signal, sys
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if "-M" in sys.argv:  # the master: holds on until it is stopped
    signal.pause()
if os.environ.get("FAKE_SSH_FAIL"):
    sys.stderr.write("root@127.0.0.1: Permission denied (publickey).\\n")
    sys.exit(255)
while chunk := os.read(0, 65536):
    os.write(1, chunk.upper())
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "ssh.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(log))
    return log


def talk(relay: Relay, data: bytes) -> bytes:
    """Send `data` and read the answer at the same time (as a socket peer must)."""
    got: list[bytes] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(relay.path))

        def read() -> None:
            while chunk := conn.recv(65536):
                got.append(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        reader.join(timeout=20)
    return b"".join(got)


def test_the_ssh_command_is_the_docker_clis() -> None:
    assert ssh_argv("ssh://deploy@eu-1.example.com") == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=30",
        "-l",
        "deploy",
        "--",
        "eu-1.example.com",
        "docker",
        "system",
        "dial-stdio",
    ]
    assert ssh_argv("ssh://10.0.0.7:2222")[-7:-4] == ["-p", "2222", "--"]
    with pytest.raises(ConfigError, match="not an ssh:// endpoint"):
        ssh_argv("ssh://host/some/path")


def test_each_connection_is_its_own_ssh_and_bytes_go_both_ways(fake_ssh: Path) -> None:
    relay = Relay("ssh://root@127.0.0.1:22221")
    try:
        assert stat.S_IMODE(relay.folder.stat().st_mode) == 0o700
        assert talk(relay, b"GET /_ping HTTP/1.1\r\n\r\n") == b"GET /_PING HTTP/1.1\r\n\r\n"
        big = os.urandom(300_000).hex().encode()  # more than one pipe buffer
        assert talk(relay, big) == big.upper()
        calls = fake_ssh.read_text().splitlines()
        sessions = [c for c in calls if c.endswith("docker system dial-stdio")]
        assert len(sessions) == 2
        assert sessions[0].endswith("-l root -p 22221 -- 127.0.0.1 docker system dial-stdio")
        control = f"ControlPath={relay.folder / 'master'}"
        assert f"-o {control} -o ControlMaster=no" in sessions[0]
        masters = [c for c in calls if c.startswith("-M -N")]
        assert masters == [
            f"-M -N -o {control} -o BatchMode=yes -o ConnectTimeout=30 -l root "
            "-p 22221 -- 127.0.0.1"
        ]
    finally:
        relay.close()
    assert not relay.folder.exists()
    assert relay.master.poll() is not None  # the master is stopped with the relay


def test_what_ssh_said_when_it_failed_is_kept(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SSH_FAIL", "1")
    relay = Relay("ssh://root@127.0.0.1:22221")
    try:
        assert talk(relay, b"GET /_ping HTTP/1.1\r\n\r\n") == b""
        assert relay.last_error == "root@127.0.0.1: Permission denied (publickey)."
    finally:
        relay.close()
