# litedeploy's image: the self-contained entrypoint at /opt/litedeploy and the host CLI
# `deploy` (no Python needed for either).
#
#   docker build -t litedeploy:0.1.0 .
#
# Three uses:
#  - the source of the entrypoint for your app's image (a Node image, say):
#      COPY --from=litedeploy:0.1.0 /opt/litedeploy /opt/litedeploy
#      ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--"]
#  - a one-shot migration container beside an app you cannot change:
#      docker run --rm -v ./data:/data -v ./drizzle:/migrations litedeploy:0.1.0 \
#        run --db /data/app.db --migrations /migrations
#  - `deploy` without installing it on the Docker host (the stack's folder at the same path,
#    since Compose resolves bind mounts on the host; README, "Installing"):
#      docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD:$PWD" -w "$PWD" \
#        --entrypoint deploy litedeploy:0.1.0 --tag v2
#
# /opt/litedeploy is the entrypoint and nothing else (app images copy it); the host CLI is a
# bundle of its own at /opt/litedeploy-deploy (bundle/deploy.spec), on PATH as `deploy`, next to
# the docker CLI and the Compose v2 plugin, taken from DOCKER_CLI_IMAGE.
# The bundles are built on Debian 12 (bookworm), so they need glibc 2.36 or newer where they run
# (Debian 12+, Ubuntu 23.04+); keep BUILDER_IMAGE on bookworm (python:3.12-slim is trixie now).
# Tests build from local images (no registry there):
#   --build-arg BUILDER_IMAGE=... BASE_IMAGE=... DOCKER_CLI_IMAGE=... (scripts/docker.sh)
ARG BUILDER_IMAGE=python:3.12-slim-bookworm
ARG BASE_IMAGE=debian:bookworm-slim
# Where the docker CLI (/usr/local/bin/docker) and the Compose v2 plugin
# (/usr/local/libexec/docker/cli-plugins/docker-compose) come from: the official image's are
# static binaries, which run on any base.
ARG DOCKER_CLI_IMAGE=docker:27-cli

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
# Only the entrypoint's recipe: a change to the host CLI's must not rebuild this bundle.
COPY bundle/entrypoint.spec bundle/main.py ./bundle/
COPY entrypoint ./entrypoint
# onefile only for bench/bundle.py's comparison (see bundle/entrypoint.spec for why onedir).
ARG BUNDLE_MODE=onedir
RUN LITEDEPLOY_SRC=/src LITEDEPLOY_BUNDLE_MODE=${BUNDLE_MODE} /build/bin/pyinstaller --noconfirm \
      --log-level WARN --distpath /tmp/dist --workpath /tmp/pyinstaller bundle/entrypoint.spec \
 && if [ -d /tmp/dist/entrypoint ]; then mv /tmp/dist/entrypoint /opt/litedeploy; \
    else mkdir /opt/litedeploy && mv /tmp/dist/entrypoint /opt/litedeploy/; fi \
 && /opt/litedeploy/entrypoint --help >/dev/null

# The host CLI, from the same venv (litedeploy's dependencies are deploy's) and the same
# entrypoint sources (deploy uses its backup and restore), in a stage of its own so that the
# entrypoint bundle above is built, and cached, exactly as before.
FROM bundle AS host-bundle
COPY bundle/deploy.spec bundle/deploy_main.py ./bundle/
COPY deploy ./deploy
RUN LITEDEPLOY_SRC=/src /build/bin/pyinstaller --noconfirm --log-level WARN \
      --distpath /tmp/dist-deploy --workpath /tmp/pyinstaller-deploy bundle/deploy.spec \
 && mv /tmp/dist-deploy/deploy /opt/litedeploy-deploy \
 && /opt/litedeploy-deploy/deploy --help >/dev/null

FROM ${DOCKER_CLI_IMAGE} AS docker-cli

FROM ${BASE_IMAGE}
COPY --from=bundle /opt/litedeploy /opt/litedeploy
COPY --from=host-bundle /opt/litedeploy-deploy /opt/litedeploy-deploy
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=docker-cli /usr/local/libexec/docker/cli-plugins/docker-compose \
     /usr/local/libexec/docker/cli-plugins/docker-compose
# Fails the build when a copied binary does not run on this base (a dynamic one needing a newer
# glibc, say).
RUN ln -s /opt/litedeploy-deploy/deploy /usr/local/bin/deploy \
 && deploy --help >/dev/null \
 && docker --version >/dev/null \
 && docker compose version >/dev/null
ENTRYPOINT ["/opt/litedeploy/entrypoint"]
CMD ["--help"]
