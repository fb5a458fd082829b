"""The reverse proxy in front of the app: which container gets the traffic, switched gracefully.

deploy writes one line naming the chosen container (`proxy_upstream`, its `{address}` replaced
by CONTAINER:PORT, a name Docker's DNS answers on the project's network) into
`proxy_upstream_file`, atomically, then runs `proxy_reload` in the proxy's container
(`compose exec -T`). nginx's `nginx -s reload` starts new workers with the new address and lets
the old ones finish their in-flight requests, so no request is dropped by the switch. Any proxy
that reads its upstream from a file fits (README, "Zero-downtime deploys"): Caddy
(`reverse_proxy {address}` in an imported file, `caddy reload`), Traefik (file provider, which
watches: no reload), HAProxy (`server app {address}`, a reload through its master socket).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .compose import Compose
from .config import Settings
from .errors import ConfigError, StepFailed
from .runner import Result


@dataclass(frozen=True)
class Proxy:
    """One stack's proxy, as deploy.yml describes it."""

    service: str
    upstream_file: Path
    template: str
    reload: tuple[str, ...] | None
    port: int

    @classmethod
    def of(cls, settings: Settings) -> Proxy | None:
        """The configured proxy, or None when deploy.yml names none."""
        if settings.proxy_service is None:
            return None
        if settings.proxy_upstream_file is None:
            raise ConfigError(
                "proxy_service is set but proxy_upstream_file is not",
                hint="set proxy_upstream_file: to the file your proxy includes "
                "(deploy.example.yml)",
            )
        return cls(
            service=settings.proxy_service,
            upstream_file=settings.proxy_upstream_file,
            template=settings.proxy_upstream,
            reload=settings.proxy_reload,
            port=settings.app_port,
        )

    def line(self, container: str) -> str:
        return self.template.replace("{address}", f"{container}:{self.port}") + "\n"

    def pointed_at(self) -> str | None:
        """The container the upstream file names now (None: no file yet)."""
        try:
            text = self.upstream_file.read_text(encoding="utf-8")
        except OSError:
            return None
        before, sep, _ = self.template.partition("{address}")
        for row in text.splitlines():
            if sep and row.startswith(before):
                return row[len(before) :].split(f":{self.port}", 1)[0]
        return None

    def prepare(self) -> None:
        """The upstream file's folder, made by us (not by Docker, as root) before the proxy
        mounts it."""
        self.upstream_file.parent.mkdir(parents=True, exist_ok=True)

    def write(self, container: str) -> None:
        """Replace the upstream file in one rename, readable by the proxy (0644)."""
        self.prepare()
        fd, tmp = tempfile.mkstemp(prefix=".upstream-", dir=self.upstream_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.line(container))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.upstream_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def reload_argv(self, compose: Compose) -> list[str] | None:
        """The reload, run in the proxy's container; None when the proxy watches the file."""
        return None if self.reload is None else compose.exec(self.service, list(self.reload))


def reload_failed(proxy: Proxy, result: Result) -> StepFailed:
    return StepFailed(
        f"reloading the proxy ({' '.join(proxy.reload or ())} in service {proxy.service}) "
        f"failed: {result.tail(3)}",
        hint=f"check the proxy's configuration and {proxy.upstream_file}; `deploy status` "
        "shows what runs",
    )
