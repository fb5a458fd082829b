# shellcheck shell=bash
# Sourced after scripts/bootstrap.sh and scripts/docker.sh (it uses their say and apt_install;
# root only): a "fleet" of extra Docker engines on this one machine, for the tests that deploy to
# several hosts. Docker-in-Docker cannot run here, so each "host" is one more dockerd of the
# machine's own, with its own socket, data root, exec root, pid file and bridge, reachable over
# its unix socket and over ssh:// (an sshd of its own on 127.0.0.1 whose sessions talk to it).
# Root only. Idempotent: what already runs is reused, and only what this shell started is
# stopped. A test script would do, after ensure_docker_engine:
#
#   trap 'stop_fleet_sshd; stop_fleet_engines; stop_docker_engine' EXIT
#   ensure_fleet_engines 3
#   load_fleet_images "$LITEDEPLOY_BASE_IMAGE" ...
#   ensure_fleet_sshd
#
# and the tests get FLEET_ENGINES, FLEET_SSH_ENDPOINTS and FLEET_SSH_PATH (see fleet_export).
#
# Engine i (1..N):
#   socket      unix:///run/litedeploy-fleet/e$i/docker.sock
#   data root   /var/lib/litedeploy-fleet/e$i (kept across runs: the cache of loaded images)
#   bridge      ldfleet$i, 10.231.$i.1/24; user-defined networks (Compose's project networks)
#               from 10.(231+i).0.0/16, so that the engines never race for a subnet
#   ssh         ssh://root@127.0.0.1:$((22220 + i)), key only, through the ssh on FLEET_SSH_PATH
#
# Why the engines run with --iptables=false: a dockerd that manages iptables deletes and
# re-creates the shared DOCKER chains when it starts, which would drop the port forwards of
# every other engine (the main one included). Without iptables, published ports go through
# docker-proxy, which listens on the host (so 127.0.0.1:PORT answers from the host), and the
# embedded DNS (127.0.0.11) keeps its rules inside each container's own network namespace.
# What the engine then leaves out is added here, per engine, tagged with a comment and removed
# with it: ACCEPT in FORWARD for its subnets (the main engine sets FORWARD's policy to DROP and
# br_netfilter sends even bridged traffic between two containers through it) and MASQUERADE
# for their outbound traffic (external names through the embedded DNS included). Caveats: all
# engines share the host's network namespace, so two engines cannot publish the same host
# port, and networks on one fleet engine are not isolated from each other.
#
# Why each start forgets the engine's networks (its network/files/local-kv.db): a dockerd
# started with --default-address-pool whose store holds a "bridge" network (any restart) deletes
# the host's `docker0` (moby's removeDefaultBridgeInterface), the main engine's bridge, cutting
# off all its containers. The own pools are worth it: without them every engine picks subnets
# from the same 172.x list, and two networks made at once on two engines can get the same one.
# So whoever restarts a fleet engine must do it through fleet_start_engine.
#
# Over ssh:// every client runs the `ssh` it finds on PATH, so tests put FLEET_SSH_PATH first
# (its ssh uses the fleet key and skips host key checks, without touching ~/.ssh). deploy itself
# serves ssh:// through its own relay socket (deploy/sshrelay.py: the ssh binary, one multiplexed
# connection per host), which its Docker SDK, Compose v1 and v2 and the docker CLI all use, so
# nothing else is needed (Compose v1 on its own would need paramiko for ssh://).

FLEET_RUN=/run/litedeploy-fleet
FLEET_LIB=/var/lib/litedeploy-fleet
FLEET_SSH_DIR=$FLEET_RUN/ssh
FLEET_SSH_KEYS=$FLEET_LIB/ssh
FLEET_SSH_PATH=$FLEET_SSH_DIR/bin
FLEET_MAX=20 # pools 10.232/16 .. 10.251/16
# What this shell started, as "i:pid" words; only these are ever stopped.
: "${FLEET_STARTED_ENGINES:=}" "${FLEET_STARTED_SSHDS:=}"
: "${FLEET_COUNT:=3}"

fleet_host() { echo "unix://$FLEET_RUN/e$1/docker.sock"; }

fleet_docker() {
  # docker against engine $1: fleet_docker 2 ps
  local i=$1
  shift
  DOCKER_HOST=$(fleet_host "$i") docker "$@"
}

fleet_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: the fleet engines and their sshds need root" >&2
    exit 1
  fi
}

fleet_count() {
  # Validates N (default: the last count, else 3) and remembers it for the other functions.
  local n=${1:-$FLEET_COUNT}
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt "$FLEET_MAX" ]; then
    echo "error: the fleet has 1 to $FLEET_MAX engines, not '$n'" >&2
    exit 1
  fi
  FLEET_COUNT=$n
}

fleet_export() {
  # The endpoints of engines 1..FLEET_COUNT, for the tests.
  local i engines=() endpoints=()
  for ((i = 1; i <= FLEET_COUNT; i++)); do
    engines+=("$(fleet_host "$i")")
    endpoints+=("ssh://root@127.0.0.1:$((22220 + i))")
  done
  export FLEET_ENGINES="${engines[*]}" FLEET_SSH_ENDPOINTS="${endpoints[*]}" FLEET_SSH_PATH
}

fleet_pid_is() {
  # Whether pid $1 is alive and its command line contains $2 (a pid file can outlive its
  # process, and the pid be reused).
  local cmdline
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$2"* ]]
}

fleet_wait_gone() {
  # Waits up to 60 s for pid $1 to exit, then kills it.
  local waited=0
  while kill -0 "$1" 2>/dev/null; do
    if [ "$waited" -ge 120 ]; then
      kill -KILL "$1" 2>/dev/null || true
      return 0
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

fleet_rules() {
  # Engine $1's iptables rules, one a line: table, chain, then the rule.
  local i=$1 tag="litedeploy-fleet-e$1" net
  for net in "10.231.$i.0/24" "10.$((231 + i)).0.0/16"; do
    echo "filter FORWARD -s $net -m comment --comment $tag -j ACCEPT"
    echo "filter FORWARD -d $net -m comment --comment $tag -j ACCEPT"
    echo "nat POSTROUTING -s $net ! -d $net -m comment --comment $tag -j MASQUERADE"
  done
}

fleet_add_rules() {
  local table chain rule
  while read -r table chain rule; do
    # shellcheck disable=SC2086 # the rule is words
    iptables -w -t "$table" -C "$chain" $rule 2>/dev/null ||
      iptables -w -t "$table" -I "$chain" $rule
  done < <(fleet_rules "$1")
}

fleet_remove_rules() {
  local table chain rule
  while read -r table chain rule; do
    # shellcheck disable=SC2086
    while iptables -w -t "$table" -D "$chain" $rule 2>/dev/null; do :; done
  done < <(fleet_rules "$1")
}

fleet_ensure_bridge() {
  local i=$1 br="ldfleet$1"
  ip link show "$br" >/dev/null 2>&1 || ip link add "$br" type bridge
  ip -4 addr show dev "$br" | grep -qF "inet 10.231.$i.1/24" ||
    ip addr add "10.231.$i.1/24" dev "$br"
  ip link set "$br" up
}

fleet_delete_network_bridges() {
  # The bridges of engine $1's user-defined networks (br-<id>, in its pool): a stopped engine's
  # (fleet_start_engine wipes its networks, so the engine would not reuse them).
  local br
  for br in $(ip -o -4 addr show | awk -v p="10.$((231 + $1))." \
    'index($4, p) == 1 && $2 ~ /^br-/ { print $2 }'); do
    ip link del "$br" 2>/dev/null || true
  done
}

fleet_start_engine() {
  # dockerd for engine $1, in the background; recorded as started by this shell. Its network
  # store is wiped first (see the top of this file: otherwise it deletes docker0).
  local i=$1 run="$FLEET_RUN/e$1"
  mkdir -p "$run/exec" "$FLEET_LIB/e$i"
  rm -f "$FLEET_LIB/e$i/network/files/local-kv.db"
  fleet_delete_network_bridges "$i"
  # its own (empty) configuration: /etc/docker/daemon.json is the main engine's
  [ -f "$run/daemon.json" ] || echo '{}' >"$run/daemon.json"
  dockerd --config-file "$run/daemon.json" \
    --host "$(fleet_host "$i")" \
    --data-root "$FLEET_LIB/e$i" \
    --exec-root "$run/exec" \
    --pidfile "$run/docker.pid" \
    --bridge "ldfleet$i" \
    --default-address-pool "base=10.$((231 + i)).0.0/16,size=24" \
    --iptables=false \
    --containerd-namespace "litedeploy-fleet-e$i" \
    --containerd-plugins-namespace "litedeploy-fleet-e$i-plugins" \
    >"$run/dockerd.log" 2>&1 </dev/null &
  FLEET_STARTED_ENGINES+=" $i:$!"
}

ensure_fleet_engines() {
  # Engines 1..N (default 3) answering on their sockets: those that do not answer are started
  # (all at once), then waited for.
  fleet_require_root
  fleet_count "${1:-}"
  command -v dockerd >/dev/null || apt_install docker.io
  command -v ip >/dev/null || apt_install iproute2
  command -v iptables >/dev/null || apt_install iptables
  local i pid waiting=() started=() running=() docker0=""
  ip link show docker0 >/dev/null 2>&1 && docker0=1
  for ((i = 1; i <= FLEET_COUNT; i++)); do
    fleet_add_rules "$i"
    if fleet_docker "$i" info >/dev/null 2>&1; then
      running+=("e$i")
      continue
    fi
    fleet_ensure_bridge "$i"
    pid=$(cat "$FLEET_RUN/e$i/docker.pid" 2>/dev/null || true)
    if fleet_pid_is "$pid" "$FLEET_RUN/e$i/docker.sock"; then
      waiting+=("$i") # another shell's, still starting: wait for it, never stop it
      continue
    fi
    fleet_start_engine "$i"
    started+=("e$i")
    waiting+=("$i")
  done
  [ ${#running[@]} -eq 0 ] || say "fleet engines already running: ${running[*]}"
  [ ${#started[@]} -eq 0 ] || say "starting fleet engines ${started[*]} (logs: $FLEET_RUN/e*/dockerd.log)"
  local waited=0 log
  for i in "${waiting[@]}"; do
    log="$FLEET_RUN/e$i/dockerd.log"
    until fleet_docker "$i" info >/dev/null 2>&1; do
      pid=$(fleet_started_pid "$i")
      if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
        echo "error: the dockerd of fleet engine $i exited at start; the end of its log ($log):" >&2
        tail -n 20 "$log" >&2
        stop_fleet_engines
        exit 1
      fi
      if [ "$waited" -ge 120 ]; then
        echo "error: fleet engine $i did not answer within 60 s; the end of its log ($log):" >&2
        tail -n 20 "$log" >&2
        stop_fleet_engines
        exit 1
      fi
      sleep 0.5
      waited=$((waited + 1))
    done
  done
  if [ -n "$docker0" ] && ! ip link show docker0 >/dev/null 2>&1; then
    echo "error: docker0 (the main engine's bridge) vanished while fleet engines started;" \
      "restart the main engine to make it again" >&2
    stop_fleet_engines
    exit 1
  fi
  fleet_export
}

fleet_started_pid() {
  # The pid of engine $1's dockerd if this shell started it.
  local entry
  for entry in $FLEET_STARTED_ENGINES; do
    [ "${entry%%:*}" != "$1" ] || echo "${entry#*:}"
  done
}

stop_fleet_engines() {
  # Stops the engines this shell started (SIGTERM, then wait: dockerd stops their containers
  # first), then deletes their bridges, the bridges of their networks and their iptables
  # rules. Engines that were already running are left alone.
  [ -n "$FLEET_STARTED_ENGINES" ] || return 0
  local entries=$FLEET_STARTED_ENGINES entry i pid names=()
  FLEET_STARTED_ENGINES=""
  for entry in $entries; do
    i=${entry%%:*} pid=${entry#*:}
    names+=("e$i")
    # the pid file names the same dockerd, unless it died and another one took over
    if fleet_pid_is "$pid" "$FLEET_RUN/e$i/docker.sock" &&
      [ "$(cat "$FLEET_RUN/e$i/docker.pid" 2>/dev/null || true)" = "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  say "stopping fleet engines ${names[*]}"
  for entry in $entries; do
    i=${entry%%:*} pid=${entry#*:}
    fleet_pid_is "$pid" "$FLEET_RUN/e$i/docker.sock" && fleet_wait_gone "$pid"
    # a pid file naming another live dockerd means that engine is someone else's now
    if fleet_pid_is "$(cat "$FLEET_RUN/e$i/docker.pid" 2>/dev/null || true)" \
      "$FLEET_RUN/e$i/docker.sock"; then
      continue
    fi
    ip link del "ldfleet$i" 2>/dev/null || true
    fleet_delete_network_bridges "$i" # they outlive the engine
    fleet_remove_rules "$i"
  done
}

load_fleet_images() {
  # Each image (by ID) in each engine 1..FLEET_COUNT: the engines that lack some (or have
  # another image under the name) get them from the main engine, one `docker save` for all of
  # them (layers shared), loaded into the engines side by side.
  [ $# -gt 0 ] || return 0
  local imgs=("$@") img id i k ids=() have missing key
  for img in "${imgs[@]}"; do
    id=$(docker image inspect --format '{{.Id}}' "$img") || {
      echo "error: image $img is not on the main engine" >&2
      exit 1
    }
    ids+=("$id")
  done
  local -A group=() # the missing images, one a line -> the engines that miss them
  for ((i = 1; i <= FLEET_COUNT; i++)); do
    missing=""
    for ((k = 0; k < ${#imgs[@]}; k++)); do
      img=${imgs[k]}
      have=$(fleet_docker "$i" image inspect --format '{{.Id}}' "$img" 2>/dev/null || true)
      [ "$have" = "${ids[k]}" ] || missing+="$img"$'\n'
    done
    [ -z "$missing" ] || group[$missing]+=" $i"
  done
  if [ ${#group[@]} -eq 0 ]; then
    say "fleet images: all $# already in engines 1-$FLEET_COUNT"
    return 0
  fi
  local start=$SECONDS tar pids list engines
  mkdir -p "$FLEET_LIB"
  for key in "${!group[@]}"; do
    mapfile -t list <<<"${key%$'\n'}"
    engines=${group[$key]}
    tar=$(mktemp "$FLEET_LIB/images.XXXXXX.tar")
    if ! docker save -o "$tar" "${list[@]}"; then
      rm -f "$tar"
      echo "error: docker save ${list[*]} failed" >&2
      exit 1
    fi
    pids=()
    for i in $engines; do
      fleet_docker "$i" load -q -i "$tar" >"$tar.e$i.log" 2>&1 &
      pids+=("$i:$!")
    done
    local entry failed=""
    for entry in "${pids[@]}"; do
      wait "${entry#*:}" || failed+=" ${entry%%:*}"
    done
    if [ -n "$failed" ]; then
      for i in $failed; do
        echo "error: docker load into fleet engine $i failed:" >&2
        cat "$tar.e$i.log" >&2
      done
      rm -f "$tar" "$tar".e*.log
      exit 1
    fi
    rm -f "$tar" "$tar".e*.log
    say "fleet images: loaded ${list[*]} into engines${engines// / e} ($((SECONDS - start)) s)"
  done
}

fleet_install_openssh() {
  # openssh-server and -client, without letting the package start the machine's own sshd on
  # port 22 (a policy-rc.d that forbids it, for the install only, unless one is there).
  if dpkg -s openssh-server openssh-client >/dev/null 2>&1; then
    return 0
  fi
  local policy=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    made=1
  fi
  apt_install openssh-server openssh-client || {
    [ -z "$made" ] || rm -f "$policy"
    exit 1
  }
  [ -z "$made" ] || rm -f "$policy"
}

fleet_sshd_config() {
  # sshd configuration for engine $1: 127.0.0.1 only, root with the fleet key only, and every
  # session's DOCKER_HOST set to the engine.
  local i=$1 use_pam=no
  # without PAM, sshd refuses a locked account ('!' in shadow) even with a key; PAM does not
  case "$(getent shadow root | cut -d: -f2)" in '!'*) use_pam=yes ;; esac
  cat <<EOF
Port $((22220 + i))
ListenAddress 127.0.0.1
HostKey $FLEET_SSH_KEYS/ssh_host_ed25519_key
PidFile $FLEET_SSH_DIR/sshd-e$i.pid
AuthorizedKeysFile $FLEET_SSH_KEYS/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM $use_pam
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 100:30:200
SetEnv DOCKER_HOST=$(fleet_host "$i")
EOF
}

fleet_sshd_answers() {
  # Whether the sshd of engine $1 lets the fleet key in with that engine's DOCKER_HOST.
  # shellcheck disable=SC2016 # expanded by the remote shell
  [ "$("$FLEET_SSH_PATH/ssh" -o ConnectTimeout=5 -p "$((22220 + $1))" root@127.0.0.1 \
    'printf %s "$DOCKER_HOST"' 2>/dev/null)" = "$(fleet_host "$1")" ]
}

ensure_fleet_sshd() {
  # An sshd for each engine 1..N (default: as many as ensure_fleet_engines made), the fleet
  # keys (made once, kept under /var/lib/litedeploy-fleet/ssh) and the ssh wrapper on
  # FLEET_SSH_PATH that the docker CLI, Compose and the Python SDK run as `ssh`.
  fleet_require_root
  fleet_count "${1:-}"
  fleet_install_openssh
  mkdir -p "$FLEET_SSH_PATH" "$FLEET_SSH_KEYS" /run/sshd # /run/sshd: sshd's privsep dir
  chmod 0700 "$FLEET_SSH_KEYS"
  [ -f "$FLEET_SSH_KEYS/ssh_host_ed25519_key" ] ||
    ssh-keygen -q -t ed25519 -N '' -C litedeploy-fleet-host -f "$FLEET_SSH_KEYS/ssh_host_ed25519_key"
  [ -f "$FLEET_SSH_KEYS/id_ed25519" ] ||
    ssh-keygen -q -t ed25519 -N '' -C litedeploy-fleet -f "$FLEET_SSH_KEYS/id_ed25519"
  install -m 0600 "$FLEET_SSH_KEYS/id_ed25519.pub" "$FLEET_SSH_KEYS/authorized_keys"
  cat >"$FLEET_SSH_DIR/ssh_config" <<EOF
Host *
  IdentityFile $FLEET_SSH_KEYS/id_ed25519
  IdentitiesOnly yes
  IdentityAgent none
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
EOF
  # shellcheck disable=SC2016 # "$@" is the wrapper's
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$FLEET_SSH_DIR/ssh_config" \
    >"$FLEET_SSH_PATH/ssh"
  chmod 0755 "$FLEET_SSH_PATH/ssh"
  local i conf pid started=() running=()
  for ((i = 1; i <= FLEET_COUNT; i++)); do
    conf="$FLEET_SSH_DIR/sshd-e$i.conf"
    pid=$(cat "$FLEET_SSH_DIR/sshd-e$i.pid" 2>/dev/null || true)
    if fleet_pid_is "$pid" "$conf" && fleet_sshd_answers "$i"; then
      running+=("e$i")
      continue
    fi
    fleet_sshd_config "$i" >"$conf"
    if ! /usr/sbin/sshd -t -f "$conf"; then
      echo "error: sshd rejects $conf" >&2
      exit 1
    fi
    rm -f "$FLEET_SSH_DIR/sshd-e$i.pid"
    : >"$FLEET_SSH_DIR/sshd-e$i.log"
    # sshd puts itself in the background once it listens, and writes its pid file
    if ! /usr/sbin/sshd -f "$conf" -E "$FLEET_SSH_DIR/sshd-e$i.log"; then
      echo "error: sshd for fleet engine $i did not start; the end of its log:" >&2
      tail -n 20 "$FLEET_SSH_DIR/sshd-e$i.log" >&2
      exit 1
    fi
    local waited=0
    until pid=$(cat "$FLEET_SSH_DIR/sshd-e$i.pid" 2>/dev/null) && [ -n "$pid" ]; do
      [ "$waited" -lt 20 ] || break
      sleep 0.25
      waited=$((waited + 1))
    done
    [ -z "$pid" ] || FLEET_STARTED_SSHDS+=" $i:$pid"
    started+=("e$i")
  done
  [ ${#running[@]} -eq 0 ] || say "fleet sshds already running: ${running[*]}"
  for i in "${started[@]}"; do
    i=${i#e}
    if ! fleet_sshd_answers "$i"; then
      echo "error: ssh root@127.0.0.1 -p $((22220 + i)) does not reach fleet engine $i's" \
        "sshd; the end of its log ($FLEET_SSH_DIR/sshd-e$i.log):" >&2
      tail -n 20 "$FLEET_SSH_DIR/sshd-e$i.log" >&2
      stop_fleet_sshd
      exit 1
    fi
  done
  [ ${#started[@]} -eq 0 ] || say "fleet sshds ${started[*]} on 127.0.0.1:22221-$((22220 + FLEET_COUNT)) (ssh: PATH=$FLEET_SSH_PATH:\$PATH)"
  fleet_export
}

stop_fleet_sshd() {
  # Stops the sshds this shell started, and their open sessions.
  [ -n "$FLEET_STARTED_SSHDS" ] || return 0
  local entries=$FLEET_STARTED_SSHDS entry i pid child children=()
  FLEET_STARTED_SSHDS=""
  say "stopping the fleet sshds"
  for entry in $entries; do
    i=${entry%%:*} pid=${entry#*:}
    fleet_pid_is "$pid" "$FLEET_SSH_DIR/sshd-e$i.conf" || continue
    for child in $(ps -o pid= --ppid "$pid" 2>/dev/null || true); do children+=("$child"); done
    kill -TERM "$pid" 2>/dev/null || true
  done
  for child in "${children[@]}"; do kill -TERM "$child" 2>/dev/null || true; done
  for entry in $entries; do
    i=${entry%%:*} pid=${entry#*:}
    fleet_pid_is "$pid" "$FLEET_SSH_DIR/sshd-e$i.conf" && fleet_wait_gone "$pid"
    rm -f "$FLEET_SSH_DIR/sshd-e$i.pid"
  done
}
