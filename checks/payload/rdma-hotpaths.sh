#!/bin/sh
# The VM checks' payload, one file for both platforms (the offline runner's busybox
# initramfs and nixpkgs' NixOS tests): the hot paths of a soft RDMA device.
#
#   rdma-hotpaths.sh serve DRIVER DEVICE              server side of every test
#   rdma-hotpaths.sh run DRIVER DEVICE PEER RESULT    client side against PEER, JSON to RESULT
#   rdma-hotpaths.sh local DRIVER DEVICE ADDR RESULT  both sides on one node (loopback)
#   rdma-hotpaths.sh negative DEVICE CONFIGDIR        a config dir of another PABI must fail
#
# DRIVER is rxe or siw; what each test should give on it is in expected.txt (beside
# this file, or $RDMA_HOTPATHS_EXPECTED): `pass`, or `unsupported` for a transport the
# device can't do (recorded as such when it fails; a pass there is a stale
# expectation and fails the check). Every test has its own port, so a server whose
# client never came (an unsupported transport) can't be met by the next test's
# client. Tools are found on PATH. POSIX sh: runs under busybox and bash.
set -u

here=$(cd "$(dirname "$0")" && pwd)
expected_file=${RDMA_HOTPATHS_EXPECTED:-$here/expected.txt}
logs=${RDMA_HOTPATHS_LOGS:-/tmp/rdma-hotpaths}
client_timeout=${RDMA_HOTPATHS_TIMEOUT:-90}
server_timeout=${RDMA_HOTPATHS_SERVER_TIMEOUT:-900}
iters=${RDMA_HOTPATHS_ITERS:-500}

TESTS="rc_pingpong uc_pingpong ud_pingpong srq_pingpong rping ib_send_bw ib_write_bw ib_read_lat"

die() {
  echo "rdma-hotpaths: $*" >&2
  exit 2
}

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

json_str() { # a log excerpt as a JSON string
  printf '%s' "$1" | awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, " "); gsub(/[\001-\037]/, ""); if (NR > 1) print "\\n"; print }'
}

# One test's server, started again whenever it ends (a server serves one client, and
# a client's failed attempt ends it too) until $server_timeout or the stop file.
serve_one() { # TEST DEVICE
  deadline=$(($(date +%s) + server_timeout))
  n=0
  : >"$logs/server-$1.log"
  while [ ! -e "$logs/stop" ] && [ "$(date +%s)" -lt "$deadline" ]; do
    n=$((n + 1))
    [ "$n" = 1 ] || echo "-- server run $n" >>"$logs/server-$1.log"
    # shellcheck disable=SC2046
    timeout "$server_timeout" $(command_of "$1" "$2" "") >>"$logs/server-$1.log" 2>&1 &
    echo $! >"$logs/server-$1.pid"
    wait $!
    sleep 1
  done
}

serve() { # DRIVER DEVICE
  mkdir -p "$logs"
  rm -f "$logs/stop"
  # Every server at once, each on its own port.
  for t in $TESTS; do
    serve_one "$t" "$2" &
    echo $! >"$logs/loop-$t.pid"
  done
  wait
}

# Ends the servers still waiting (for the next client, or for one that won't come:
# an unsupported transport), which hold the device open, and their restart loops.
# By pid (busybox has no pkill); again until no loop is left, since a loop may be
# starting a server as the stop file appears.
stop_servers() {
  touch "$logs/stop"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    alive=0
    for t in $TESTS; do
      kill "$(cat "$logs/server-$t.pid" 2>/dev/null)" 2>/dev/null
      kill -0 "$(cat "$logs/loop-$t.pid" 2>/dev/null)" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && return 0
    sleep 1
  done
  echo "rdma-hotpaths: servers still running after 10 s" >&2
  return 1
}

run() { # DRIVER DEVICE PEER RESULT
  driver=$1 dev=$2 peer=$3 result=$4
  mkdir -p "$logs"
  failed=0
  entries=""
  add() { entries="$entries${entries:+,}$1"; }

  # The device and its port.
  start=$(now)
  if ibv_devinfo -d "$dev" >"$logs/devinfo.log" 2>&1 && grep -q PORT_ACTIVE "$logs/devinfo.log"; then
    s=pass
  else
    s=fail failed=1
  fi
  cat "$logs/devinfo.log"
  add "{\"test\":\"ibv_devinfo\",\"status\":\"$s\",\"expected\":\"pass\",\"seconds\":$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')}"

  for t in $TESTS; do
    want=$(expectation "$driver" "$t")
    start=$(now)
    attempt=0
    # A server still starting refuses the connection: up to three tries for a test
    # that should pass; an expected-unsupported one gets one.
    tries=3 limit=$client_timeout
    # A transport the device lacks fails at once or hangs (siw's SRQ pingpong): 20 s.
    [ "$want" = unsupported ] && tries=1 limit=20
    : >"$logs/client-$t.log"
    while :; do
      attempt=$((attempt + 1))
      [ "$attempt" = 1 ] || echo "-- attempt $attempt" >>"$logs/client-$t.log"
      # shellcheck disable=SC2046
      timeout "$limit" $(command_of "$t" "$dev" "$peer") >>"$logs/client-$t.log" 2>&1
      rc=$?
      [ "$rc" = 0 ] || [ "$attempt" -ge "$tries" ] || { sleep 2; continue; }
      break
    done
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    case "$rc:$want" in
      0:pass) s=pass ;;
      0:unsupported) s=fail failed=1 ;; # passed where expected.txt says it can't: stale
      *:unsupported) s=unsupported ;;
      *) s=fail failed=1 ;;
    esac
    echo "== $t on $dev: $s (exit $rc, expected $want, ${secs} s, attempt $attempt)"
    sed 's/^/   /' "$logs/client-$t.log"
    figs=""
    case $t in ib_*) [ "$rc" = 0 ] && figs=$(figures_of "$t" "$logs/client-$t.log") ;; esac
    if [ "$rc" = 0 ] && [ -z "$figs" ] && [ "${t#ib_}" != "$t" ]; then
      echo "   no result row in $t's output"
      s=fail failed=1
    fi
    entry="{\"test\":\"$t\",\"status\":\"$s\",\"expected\":\"$want\",\"exit_code\":$rc,\"attempts\":$attempt,\"seconds\":$secs"
    [ -n "$figs" ] && entry="$entry,\"figures\":$figs"
    [ "$s" = pass ] || entry="$entry,\"output\":\"$(json_str "$(tail -n 5 "$logs/client-$t.log")")\""
    add "$entry}"
  done

  printf '{"driver":"%s","device":"%s","peer":"%s","tests":[%s]}\n' "$driver" "$dev" "$peer" "$entries" >"$result"
  return $failed
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
  serve) [ $# = 2 ] || die "usage: serve DRIVER DEVICE"; serve "$@" ;;
  run) [ $# = 4 ] || die "usage: run DRIVER DEVICE PEER RESULT"; run "$@" ;;
  local)
    [ $# = 4 ] || die "usage: local DRIVER DEVICE ADDR RESULT"
    serve "$1" "$2" &
    server=$!
    sleep 1
    run "$@"
    rc=$?
    if [ "$rc" != 0 ]; then
      for f in "$logs"/server-*.log; do echo "== $(basename "$f" .log)"; sed 's/^/   /' "$f"; done
    fi
    kill "$server" 2>/dev/null
    stop_servers || rc=1
    wait 2>/dev/null
    exit $rc ;;
  negative) [ $# = 2 ] || die "usage: negative DEVICE CONFIGDIR"; negative "$@" ;;
  *) die "usage: $0 serve|run|local|negative …" ;;
esac
