# A stand-in for the project image litedeploy:<version> until the self-contained entrypoint
# bundle exists on this engine, with the same interface: everything under /opt/litedeploy, and
# /opt/litedeploy/entrypoint runs in an image that has no Python (copy the folder, set the
# ENTRYPOINT). It carries Debian's Python 3.11 (interpreter, trimmed standard library,
# libsqlite3) and litedeploy installed from the wheelhouse, so it is bigger and slower to start
# than the real bundle: figures measured with it say "stand-in".
# Built by ensure_litedeploy_image (scripts/docker.sh) as litedeploy-node-standin:0.1.0.
ARG BASE_IMAGE=litedeploy-base:bookworm
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entrypoint ./entrypoint
COPY wheels ./wheels
ARG PY=/opt/litedeploy/python
# Started through the dynamic loader with --library-path, so its private libraries are found
# without LD_LIBRARY_PATH (which the app it execs would inherit); -I ignores PYTHON* variables.
RUN set -eu; \
    mkdir -p "$PY/bin" "$PY/lib" /opt/litedeploy/lib; \
    cp /usr/bin/python3.11 "$PY/bin/"; \
    cp -a /usr/lib/python3.11 "$PY/lib/"; \
    cd "$PY/lib/python3.11"; \
    rm -rf test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data distutils venv \
      config-3.11-x86_64-linux-gnu site-packages dist-packages \
      lib-dynload/_test* lib-dynload/_ctypes_test* lib-dynload/xx* lib-dynload/_xx* \
      lib-dynload/_curses* lib-dynload/_dbm* lib-dynload/nis* lib-dynload/readline* \
      lib-dynload/ossaudiodev* lib-dynload/audioop* lib-dynload/_crypt*; \
    cp -L /usr/lib/x86_64-linux-gnu/libsqlite3.so.0 /usr/lib/x86_64-linux-gnu/libexpat.so.1 \
      /opt/litedeploy/lib/; \
    python3 -m venv /tmp/pip; \
    /tmp/pip/bin/pip install -q --no-index --find-links /src/wheels \
      --target "$PY/lib/python3/dist-packages" "typer<0.29"; \
    /tmp/pip/bin/pip install -q --no-index --find-links /src/wheels --no-deps \
      --target "$PY/lib/python3/dist-packages" /src; \
    rm -rf "$PY/lib/python3/dist-packages/bin" "$PY/lib/python3/dist-packages/deploy"; \
    printf '%s\n' '#!/bin/sh' \
      '# litedeploy entrypoint (stand-in bundle): its own Python, its own libraries.' \
      'exec /lib64/ld-linux-x86-64.so.2 --library-path /opt/litedeploy/lib \' \
      '  /opt/litedeploy/python/bin/python3.11 -I -m entrypoint "$@"' \
      > /opt/litedeploy/entrypoint; \
    chmod 0755 /opt/litedeploy/entrypoint

FROM ${BASE_IMAGE}
COPY --from=build /opt/litedeploy /opt/litedeploy
LABEL org.litedeploy.standin="true"
ENTRYPOINT ["/opt/litedeploy/entrypoint"]
CMD ["--help"]
