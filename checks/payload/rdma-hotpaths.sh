#!/bin/sh
# The VM checks' payload, one file for both platforms (the offline runner's busybox
# initramfs and nixpkgs' NixOS tests): the hot paths of a soft RDMA device.
#
#   rdma-hotpaths.sh tests                            the test names, in order
#   rdma-hotpaths.sh server DRIVER DEVICE TEST        one test's server (foreground)
#   rdma-hotpaths.sh ready TEST [SECONDS]             wait until TEST's server listens here
#   rdma-hotpaths.sh settle DEVICE [SECONDS]          wait until DEVICE's netdev is configured
#   rdma-hotpaths.sh stop TEST [now]                  end TEST's server; exit 0 if it ended well
#   rdma-hotpaths.sh client DRIVER DEVICE PEER TEST   one test's client, once
#   rdma-hotpaths.sh devinfo DEVICE                   the device has an active port
#   rdma-hotpaths.sh result DRIVER DEVICE PEER RESULT the report as JSON; exit 1 if any failed
#   rdma-hotpaths.sh local DRIVER DEVICE ADDR RESULT  all of it on one node (loopback)
#   rdma-hotpaths.sh negative DEVICE CONFIGDIR        a config dir of another PABI must fail
#
# Every client starts once, after its server is listening (`ready`: the TCP listener
# of a pingpong's exchange port, the RDMA CM listener of rping and perftest, as the
# kernel lists them), so a failure is the test's, never a race of the harness: no
# test is retried. Every test has its own port.
#
# DRIVER is rxe or siw; what each test should give on it is in expected.txt (beside
# this file, or $RDMA_HOTPATHS_EXPECTED): `pass`, or `unsupported` for a transport the
# device can't do (recorded as such when it fails; a pass there is a stale
# expectation and fails the check). A perftest pass must report every figure, none
# zero. Tools are found on PATH. POSIX sh: runs under busybox and bash.
set -u

here=$(cd "$(dirname "$0")" && pwd)
expected_file=${RDMA_HOTPATHS_EXPECTED:-$here/expected.txt}
logs=${RDMA_HOTPATHS_LOGS:-/tmp/rdma-hotpaths}
client_timeout=${RDMA_HOTPATHS_TIMEOUT:-90}
server_timeout=${RDMA_HOTPATHS_SERVER_TIMEOUT:-300}
iters=${RDMA_HOTPATHS_ITERS:-500}

TESTS="rc_pingpong uc_pingpong ud_pingpong srq_pingpong rping ib_send_bw ib_write_bw ib_read_lat"

die() {
  echo "rdma-hotpaths: $*" >&2
  exit 2
}

# Registered memory counts against RLIMIT_MEMLOCK, and siw checks it even for root
# (its own pinning, without the CAP_IPC_LOCK exemption). Kernels since 5.16, and
# systemd, give every process 8 MiB; 5.10 gives 64 KiB, too little for perftest's
# 64 KiB messages (ENOMEM from the CM). Every kernel runs with at least 8 MiB.
memlock=$(ulimit -l)
if [ "$memlock" != unlimited ] && [ "$memlock" -lt 8192 ]; then
  ulimit -l 8192 || die "can't raise the memlock limit from $memlock KiB to 8192"
fi

port_of() {
  case $1 in
    rc_pingpong) echo 18515 ;; uc_pingpong) echo 18516 ;; ud_pingpong) echo 18517 ;;
    srq_pingpong) echo 18518 ;; rping) echo 18519 ;; ib_send_bw) echo 18520 ;;
    ib_write_bw) echo 18521 ;; ib_read_lat) echo 18522 ;;
    *) die "unknown test $1" ;;
  esac
}

expectation() { # DRIVER TEST
  e=$(awk -v d="$1" -v t="$2" '$1 == d && $2 == t { print $3 }' "$expected_file")
  [ -n "$e" ] || die "$expected_file has no expectation for $1 $2"
  echo "$e"
}

# The command line of one side of a test; PEER empty for the server.
command_of() { # TEST DEVICE PEER
  t=$1 dev=$2 peer=$3 port=$(port_of "$1")
  case $t in
    *_pingpong)
      # GID 0 (link-local); UD needs a message that fits the MTU.
      extra=""
      [ "$t" = ud_pingpong ] && extra="-s 1024"
      echo "ibv_$t -d $dev -g 0 -p $port -n $iters $extra $peer" ;;
    rping)
      if [ -n "$peer" ]; then echo "rping -c -a $peer -p $port -C 20 -S 256 -v"
      else echo "rping -s -a 0.0.0.0 -p $port -C 20 -S 256 -v"; fi ;;
    ib_send_bw | ib_write_bw)
      echo "$t -d $dev -R -F -p $port -n $iters -s 65536 $peer" ;;
    ib_read_lat)
      echo "$t -d $dev -R -F -p $port -n $iters -s 64 $peer" ;;
  esac
}

now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Whether TEST's server listens on this node: the pingpongs exchange their QP numbers
# over a TCP socket of their own; rping and perftest (-R) wait in an RDMA CM listener,
# which the kernel lists (`rdma resource show cm_id`) on both rxe and siw.
listening() { # TEST
  port=$(port_of "$1")
  case $1 in
    *_pingpong)
      hex=$(printf '%04X' "$port")
      cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' ;;
    *)
      rdma resource show cm_id 2>/dev/null | grep 'state LISTEN' | grep -q ":$port\\b" ;;
  esac
}

# Exit 0 once TEST's server listens; 1 if it doesn't within SECONDS, 3 if it ended
# first (a transport the device can't do: siw's UC and UD QPs fail at creation).
ready() { # TEST [SECONDS]
  deadline=$(($(date +%s) + ${2:-60}))
  while ! listening "$1"; do
    if [ -e "$logs/server-$1.rc" ]; then
      echo "rdma-hotpaths: $1's server ended ($(cat "$logs/server-$1.rc")) before listening" >&2
      return 3
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "rdma-hotpaths: $1's server is not listening after ${2:-60} s" >&2
      return 1
    fi
    sleep 0.2
  done
}

server() { # DRIVER DEVICE TEST
  mkdir -p "$logs"
  rm -f "$logs/server-$3.rc"
  # shellcheck disable=SC2046
  timeout "$server_timeout" $(command_of "$3" "$2" "") >"$logs/server-$3.log" 2>&1 &
  echo $! >"$logs/server-$3.pid"
  wait $!
  echo $? >"$logs/server-$3.rc"
}

# The device's netdev is ready for traffic: its IPv6 link-local address is there and
# none is still tentative. Until
# duplicate address detection ends (a second or two after the link comes up), the
# kernel can't route from the link-local address that RoCE's GID 0 stands for, and
# moving a QP to RTR with that GID can fail ("Failed to modify QP to RTR"). Measured
# on rxe (6.1): the first pingpong failed in 5 of 12 checks with no wait, 5 of 49 when
# only a tentative address was waited for (the address itself comes only with the
# carrier, after `rdma link add`), 0 of 20 with both waits.
# On RoCE (rxe) that is not enough: moving a QP to RTR resolves GID 0's address
# through the kernel's routes, and the address can show as no longer tentative while
# its local route is not in place yet. The lookup then leaves through the netdev,
# neighbour discovery for our own address fails, and so does the move ("Failed to
# modify QP to RTR"; its client: "Couldn't read/write remote address"). Measured with
# scripts/repro-first-pingpong (6.12.118, two VMs and two busy loops on two cores):
# without this wait, 6 of 106 rounds failed; with the route logged, every failed round
# had found the address routed out of eth0 when its address settled (5 of 6 such rounds
# failed), and every round that found it routed locally passed. So settle also waits
# until the kernel routes that address locally.
settle() { # DEVICE [SECONDS]
  netdev=$(rdma link show 2>/dev/null | awk -v d="$1" '$2 ~ "^" d "/" { for (i = 1; i < NF; i++) if ($i == "netdev") print $(i + 1) }')
  [ -n "$netdev" ] || { echo "rdma-hotpaths: no netdev for $1 in 'rdma link show'" >&2; return 1; }
  deadline=$(($(date +%s) + ${2:-30}))
  # The link-local address appears only once the carrier is up, after `rdma link
  # add`: no address yet is not settled either.
  while ip -6 addr show dev "$netdev" | grep -q tentative || ! ip -6 addr show dev "$netdev" | grep -q 'scope link'; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "rdma-hotpaths: $netdev still has tentative addresses after ${2:-30} s" >&2
      ip -6 addr show dev "$netdev" >&2
      return 1
    fi
    sleep 0.2
  done
  gid0=$(roce_gid0 "$1")
  [ -n "$gid0" ] || return 0
  waited=$(now)
  until ip -6 route get "$gid0" dev "$netdev" 2>/dev/null | grep -q '^local '; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "rdma-hotpaths: GID 0's address $gid0 is not routed locally after ${2:-30} s" >&2
      ip -6 route get "$gid0" dev "$netdev" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "rdma-hotpaths: $1's GID 0 ($gid0) routed locally $(since "$waited") s after its address settled" >&2
}

# GID 0 of DEVICE's port 1 when it is a RoCE GID (an IPv6 address the kernel routes);
# nothing for iWARP (siw), whose GIDs are not addresses.
roce_gid0() { # DEVICE
  ibport=${RDMA_HOTPATHS_SYSFS:-/sys}/class/infiniband/$1/ports/1
  case $(cat "$ibport/gid_attrs/types/0" 2>/dev/null) in
    RoCE*) cat "$ibport/gids/0" 2>/dev/null ;;
  esac
}

# A server that passed ends by itself once its client is done; one whose client
# failed (an unsupported transport) may wait for it forever: ended after 10 s, or at
# once with `now`.
stop() { # TEST [now]
  pid=$(cat "$logs/server-$1.pid" 2>/dev/null) || die "no server of $1 was started"
  waits="1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"
  [ "${2:-}" = now ] && waits=""
  for _ in $waits; do
    [ -e "$logs/server-$1.rc" ] && break
    sleep 0.5
  done
  if [ ! -e "$logs/server-$1.rc" ]; then
    kill "$pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -e "$logs/server-$1.rc" ] && break; sleep 0.5; done
    echo "killed" >"$logs/server-$1.rc"
    return 1
  fi
  [ "$(cat "$logs/server-$1.rc")" = 0 ]
}

client() { # DRIVER DEVICE PEER TEST
  want=$(expectation "$1" "$4")
  limit=$client_timeout
  # A transport the device lacks fails at once or hangs (siw's SRQ pingpong): 20 s.
  [ "$want" = unsupported ] && limit=20
  mkdir -p "$logs"
  start=$(now)
  # shellcheck disable=SC2046
  timeout "$limit" $(command_of "$4" "$2" "$3") >"$logs/client-$4.log" 2>&1
  rc=$?
  echo "$rc $(since "$start")" >"$logs/client-$4.rc"
  return $rc
}

devinfo() { # DEVICE
  mkdir -p "$logs"
  start=$(now)
  ibv_devinfo -d "$1" >"$logs/devinfo.log" 2>&1 && grep -q PORT_ACTIVE "$logs/devinfo.log"
  rc=$?
  echo "$rc $(since "$start")" >"$logs/devinfo.rc"
  cat "$logs/devinfo.log"
  return $rc
}

# perftest's result row (the line after the `#bytes` header) as JSON figures.
figures_of() { # TEST LOG
  awk -v t="$1" '
    /#bytes/ { hdr = 1; next }
    hdr && $1 ~ /^[0-9]+$/ && NF >= 5 {
      if (t == "ib_read_lat")
        printf "{\"bytes\":%s,\"iterations\":%s,\"lat_min_us\":%s,\"lat_typical_us\":%s,\"lat_avg_us\":%s}", $1, $2, $3, $5, $6
      else
        printf "{\"bytes\":%s,\"iterations\":%s,\"bw_peak_mib_s\":%s,\"bw_avg_mib_s\":%s,\"msg_rate_mpps\":%s}", $1, $2, $3, $4, $5
      exit
    }' "$2"
}

# The figures that are zero (or not numbers): a pass carries its evidence.
zero_figures() { # FIGURES_JSON
  printf '%s\n' "$1" | tr -d '{}' | tr ',' '\n' |
    awk -F: '{ k = $1; gsub(/"/, "", k); v = $2 } !(v ~ /^[0-9.]+$/ && v + 0 > 0) { printf "%s%s", sep, k; sep = " " }'
}

json_str() { # a log excerpt as a JSON string
  printf '%s' "$1" | awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, " "); gsub(/[\001-\037]/, ""); if (NR > 1) print "\\n"; print }'
}

# The report, from what `devinfo`, `client` and `stop` left in $logs.
result() { # DRIVER DEVICE PEER RESULT
  driver=$1 dev=$2 peer=$3 out=$4
  failed=0
  entries=""
  add() { entries="$entries${entries:+,}$1"; }

  read -r rc secs <"$logs/devinfo.rc" 2>/dev/null || { rc=missing secs=0; }
  s=pass
  [ "$rc" = 0 ] || s=fail failed=1
  add "{\"test\":\"ibv_devinfo\",\"status\":\"$s\",\"expected\":\"pass\",\"seconds\":$secs}"

  for t in $TESTS; do
    want=$(expectation "$driver" "$t")
    reason=""
    if ! read -r rc secs <"$logs/client-$t.rc" 2>/dev/null; then
      rc=-1 secs=0
    fi
    [ "$rc" = -1 ] && reason="the client never ran: $(head -n 1 "$logs/client-$t.log" 2>/dev/null)"
    srv=$(cat "$logs/server-$t.rc" 2>/dev/null || echo missing)
    case "$rc:$want" in
      0:pass) s=pass ;;
      0:unsupported) s=fail reason="passed where expected.txt says unsupported: a stale expectation" ;;
      *:unsupported) s=unsupported ;;
      *) s=fail reason=${reason:-"the client exited $rc"} ;;
    esac
    if [ "$s" = pass ] && [ "$srv" != 0 ]; then
      s=fail reason="the client passed but its server ended with $srv"
    fi
    figs=""
    case $t in
      ib_*)
        if [ "$s" = pass ]; then
          figs=$(figures_of "$t" "$logs/client-$t.log")
          if [ -z "$figs" ]; then
            s=fail reason="no result row in $t's output"
          else
            zeros=$(zero_figures "$figs")
            [ -z "$zeros" ] || s=fail reason="zero or missing figures: $zeros"
          fi
        fi ;;
    esac
    [ "$s" = fail ] && failed=1
    echo "== $t on $dev: $s (client exit $rc, server $srv, expected $want, ${secs} s)${reason:+: $reason}"
    sed 's/^/   /' "$logs/client-$t.log" 2>/dev/null
    if [ "$s" = fail ]; then
      echo "   -- server:"
      sed 's/^/   /' "$logs/server-$t.log" 2>/dev/null
    fi
    entry="{\"test\":\"$t\",\"status\":\"$s\",\"expected\":\"$want\",\"exit_code\":$rc,\"server_exit\":\"$srv\",\"seconds\":$secs"
    [ -n "$figs" ] && entry="$entry,\"figures\":$figs"
    [ -n "$reason" ] && entry="$entry,\"reason\":\"$(json_str "$reason")\""
    [ "$s" = pass ] || entry="$entry,\"output\":\"$(json_str "$(tail -n 5 "$logs/client-$t.log" 2>/dev/null)")\""
    # The server's side of a failure (a client that lost its peer says little).
    [ "$s" = fail ] && entry="$entry,\"server_output\":\"$(json_str "$(tail -n 8 "$logs/server-$t.log" 2>/dev/null)")\""
    add "$entry}"
  done

  printf '{"driver":"%s","device":"%s","peer":"%s","tests":[%s]}\n' "$driver" "$dev" "$peer" "$entries" >"$out"
  return $failed
}

local_run() { # DRIVER DEVICE ADDR RESULT
  driver=$1 dev=$2 addr=$3
  rm -rf "$logs"
  mkdir -p "$logs"
  settle "$dev"
  devinfo "$dev"
  for t in $TESTS; do
    # Gone before the server starts, not as it starts: `ready` must never read an
    # earlier run's exit status.
    rm -f "$logs/server-$t.rc"
    server "$driver" "$dev" "$t" &
    if ! ready "$t" 2>"$logs/client-$t.log"; then
      # The client can't run: recorded as its failure, with why.
      echo "-1 0" >"$logs/client-$t.rc"
      stop "$t" now
    elif client "$driver" "$dev" "$addr" "$t"; then
      stop "$t"
    else
      stop "$t" now
    fi
    wait
  done
  result "$@"
}

negative() { # DEVICE CONFIGDIR
  dev=$1 bad=$2
  [ -d "$bad" ] || die "no config dir $bad"
  mount --bind "$bad" /etc/libibverbs.d || die "can't bind $bad over /etc/libibverbs.d"
  IBV_SHOW_WARNINGS=1 ibv_devinfo -d "$dev" >/tmp/negative.log 2>&1
  rc=$?
  umount /etc/libibverbs.d
  sed 's/^/   /' /tmp/negative.log
  if [ "$rc" != 0 ] && grep -q "couldn't load driver" /tmp/negative.log; then
    echo "== negative (provider of another PABI): refused as expected"
    return 0
  fi
  echo "== negative (provider of another PABI): NOT refused (exit $rc)"
  return 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  tests) echo "$TESTS" ;;
  server) [ $# = 3 ] || die "usage: server DRIVER DEVICE TEST"; server "$@" ;;
  ready) [ $# -ge 1 ] || die "usage: ready TEST [SECONDS]"; ready "$@" ;;
  settle) [ $# -ge 1 ] || die "usage: settle DEVICE [SECONDS]"; settle "$@" ;;
  stop) [ $# -ge 1 ] || die "usage: stop TEST [now]"; stop "$@" ;;
  client) [ $# = 4 ] || die "usage: client DRIVER DEVICE PEER TEST"; client "$@" ;;
  devinfo) [ $# = 1 ] || die "usage: devinfo DEVICE"; devinfo "$@" ;;
  result) [ $# = 4 ] || die "usage: result DRIVER DEVICE PEER RESULT"; result "$@" ;;
  local) [ $# = 4 ] || die "usage: local DRIVER DEVICE ADDR RESULT"; local_run "$@" ;;
  negative) [ $# = 2 ] || die "usage: negative DEVICE CONFIGDIR"; negative "$@" ;;
  *) die "usage: $0 tests|server|ready|settle|stop|client|devinfo|result|local|negative …" ;;
esac
