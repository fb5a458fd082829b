# litedeploy's image: the self-contained entrypoint at /opt/litedeploy (no Python needed).
#
#   docker build -t litedeploy:0.1.0 .
#
# Two uses:
#  - the source of the entrypoint for your app's image (a Node image, say):
#      COPY --from=litedeploy:0.1.0 /opt/litedeploy /opt/litedeploy
#      ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--"]
#  - a one-shot migration container beside an app you cannot change:
#      docker run --rm -v ./data:/data -v ./drizzle:/migrations litedeploy:0.1.0 \
#        run --db /data/app.db --migrations /migrations
#
# The bundle is built on Debian 12 (bookworm), so it needs glibc 2.36 or newer where it runs
# (Debian 12+, Ubuntu 23.04+); keep BUILDER_IMAGE on bookworm (python:3.12-slim is trixie now).
# The host-side `deploy` is not in here: install it on the Docker host with pipx (README).
# Tests build from local images (no registry there): --build-arg BUILDER_IMAGE=... BASE_IMAGE=...
ARG BUILDER_IMAGE=python:3.12-slim-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS bundle
# Extra pip arguments, e.g. "--no-index --find-links /src/wheels" for offline builds.
ARG PIP_ARGS=""
COPY bundle/prepare-builder.sh /tmp/prepare-builder.sh
RUN sh /tmp/prepare-builder.sh
WORKDIR /src
# The build tools and litedeploy's dependencies first, so that a change to the code only
# re-runs PyInstaller (a few seconds).
COPY pyproject.toml ./
COPY bundle/requirements.txt ./bundle/requirements.txt
COPY wheels ./wheels
RUN python3 -m venv /build \
 && python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' >/tmp/dependencies.txt \
 && /build/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_ARGS} \
      -r bundle/requirements.txt -r /tmp/dependencies.txt
COPY bundle ./bundle
COPY entrypoint ./entrypoint
# onefile only for bench/bundle.py's comparison (see bundle/entrypoint.spec for why onedir).
ARG BUNDLE_MODE=onedir
RUN LITEDEPLOY_SRC=/src LITEDEPLOY_BUNDLE_MODE=${BUNDLE_MODE} /build/bin/pyinstaller --noconfirm \
      --log-level WARN --distpath /tmp/dist --workpath /tmp/pyinstaller bundle/entrypoint.spec \
 && if [ -d /tmp/dist/entrypoint ]; then mv /tmp/dist/entrypoint /opt/litedeploy; \
    else mkdir /opt/litedeploy && mv /tmp/dist/entrypoint /opt/litedeploy/; fi \
 && /opt/litedeploy/entrypoint --help >/dev/null

FROM ${BASE_IMAGE}
COPY --from=bundle /opt/litedeploy /opt/litedeploy
ENTRYPOINT ["/opt/litedeploy/entrypoint"]
CMD ["--help"]
