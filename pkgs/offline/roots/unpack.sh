# Unpacks a build root (./default.nix): every pinned .deb's data into $out, merged
# /usr as Debian has it, then the few links dpkg's maintainer scripts would make.
# Run by the bootstrap busybox (`$builder`) with no PATH: every tool is an applet.
set -eu
bb=$builder
fail() { echo "root: $*" >&2; exit 1; }

$bb mkdir -p "$out/usr/bin" "$out/usr/sbin" "$out/usr/lib" "$out/usr/lib64"
for d in bin sbin lib lib64; do $bb ln -s "usr/$d" "$out/$d"; done

n=0
for deb in $debs; do
  work=$TMPDIR/deb
  $bb mkdir "$work"
  cd "$work"
  $bb ar x "$deb"
  set -- data.tar*
  [ -f "$1" ] || fail "$deb: no data.tar member"
  case $1 in
    data.tar.xz) $bb unxz -c "$1" ;;
    data.tar.gz) $bb gunzip -c "$1" ;;
    data.tar) $bb cat "$1" ;;
    *) fail "$deb: $1: compression the bootstrap busybox can't read" ;;
  esac | $bb tar -x -C "$out" || fail "$deb: unpacking $1 failed"
  cd "$TMPDIR"
  $bb rm -rf "$work"
  n=$((n + 1))
done
echo "root: unpacked $n packages"

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
