#!/bin/sh
# Starts the node's dockerd: the Unix socket inside, plus the TCP API on this container's own
# address only (never 0.0.0.0), so the host (the hub, the tests) can drive it. Extra dockerd
# flags (generic resources) come as arguments.
#
# GOLDENHUB_NODE_REGISTRY=<local host:port>=<remote host:port> makes the host's registry appear
# at the same loopback address inside the node as on the host (e.g. 127.0.0.1:5000), relayed
# to where the node can reach it (the host's relay on the bridge gateway). One image name then
# works on the host and on every node, and dockerd trusts it without TLS as it trusts any
# loopback registry.
set -eu
addr=$(ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$addr" ] || { echo "no IPv4 address on eth0" >&2; exit 1; }
if [ -n "${GOLDENHUB_NODE_REGISTRY:-}" ]; then
  local_end=${GOLDENHUB_NODE_REGISTRY%%=*}
  remote_end=${GOLDENHUB_NODE_REGISTRY#*=}
  socat "TCP-LISTEN:${local_end##*:},bind=${local_end%:*},fork,reuseaddr" "TCP:$remote_end" &
fi
# A node container restarted after a kill keeps its volume and a stale pid file.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
exec dockerd --host unix:///var/run/docker.sock --host "tcp://$addr:2375" --tls=false "$@"
