# Unpacks a build root (./default.nix): every pinned .deb's data into $out, merged
# /usr as Debian has it, then the few links dpkg's maintainer scripts would make.
# Run by the bootstrap busybox (`$builder`) with no PATH: every tool is an applet.
set -eu
bb=$builder
fail() { echo "root: $*" >&2; exit 1; }

$bb mkdir -p "$out/usr/bin" "$out/usr/sbin" "$out/usr/lib" "$out/usr/lib64"
for d in bin sbin lib lib64; do $bb ln -s "usr/$d" "$out/$d"; done

# One package's data member, streamed out of the archive into $out. `tar -k` never
# replaces a file: a path two packages ship fails the build naming the package (Debian
# forbids it between co-installable packages), so the unpacking order can't matter
# and the packages unpack in lanes, side by side (one took 31 s here, two lanes 20 s:
# decompression is one core's work and the file writes wait on the disk).
unpack() { # DEB [TAR-FLAGS]
  set -- "$1" "${2:-}" $($bb ar t "$1" | $bb grep '^data\.tar')
  [ $# = 3 ] || fail "$1: not one data.tar member"
  case $3 in
    data.tar.xz) dec=unxz ;;
    data.tar.gz) dec=gunzip ;;
    data.tar) dec=cat ;;
    *) fail "$1: $3: compression the bootstrap busybox can't read" ;;
  esac
  err=$TMPDIR/${1##*/}.err
  # shellcheck disable=SC2086
  $bb ar p "$1" "$3" | $bb $dec -c | $bb tar -x $2 -C "$out" 2>"$err" \
    || fail "$1: unpacking $3 failed: $($bb cat "$err")"
}

# base-files first, alone and allowed to replace: on trixie and later it ships the
# merged-/usr links made above.
rest=""
n=0
for deb in $debs; do
  case ${deb##*/} in
    ????????????????????????????????-base-files_*) unpack "$deb" ;;
    *) rest="$rest $deb" ;;
  esac
  n=$((n + 1))
done
# Nix's `cores = 0` (scripts/nix/nix.conf) means every core.
lanes=${NIX_BUILD_CORES:-0}
[ "$lanes" -ge 1 ] || lanes=$($bb nproc)
pids=""
lane=0
while [ $lane -lt $lanes ]; do
  (
    i=0
    for deb in $rest; do
      [ $((i % lanes)) = $lane ] && unpack "$deb" -k
      i=$((i + 1))
    done
  ) &
  pids="$pids $!"
  lane=$((lane + 1))
done
for pid in $pids; do wait "$pid" || fail "a lane of packages failed (above)"; done
echo "root: unpacked $n packages in $lanes lanes"

# Merged /usr stays merged: a package must not have replaced a top-level link.
for d in bin sbin lib lib64; do
  [ -L "$out/$d" ] || fail "a package replaced /$d with a directory"
done

for a in $alternatives; do
  link=${a%%=*} target=${a#*=}
  [ -e "$out/$link" ] || [ -L "$out/$link" ] && continue
  [ -e "$out/$($bb dirname "$link")/$target" ] || continue
  $bb ln -s "$target" "$out/$link"
done
[ -x "$out/bin/sh" ] || fail "no /bin/sh"
[ -x "$out/bin/bash" ] || fail "no /bin/bash"

# Accounts the tools may look up (builds run as root of a user namespace).
$bb mkdir -p "$out/etc"
$bb rm -f "$out/etc/passwd" "$out/etc/group"
printf 'root:x:0:0:root:/root:/bin/sh\nnixbld:x:1000:100:Nix build user:/build:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' > "$out/etc/passwd"
printf 'root:x:0:\nnixbld:x:100:\nnogroup:x:65534:\n' > "$out/etc/group"

# Mount points for ./enter.sh: the store, devices, processes, and the build
# directory (/build in the sandbox; below /tmp, a tmpfs, without it).
for d in nix dev proc sys tmp build; do
  $bb rm -rf "$out/$d"
  $bb mkdir "$out/$d"
done
