# Runs a builder inside a build root (./default.nix): `busybox sh enter.sh CMD ARGS…`
# with $root the root's store path and $builder the bootstrap busybox. In a new user
# and mount namespace (uid 0 there, the build user outside), the root gets the store,
# /dev, /proc, a tmpfs /tmp and the build directory mounted on its empty mount points,
# and CMD runs chrooted in it: the root's /usr is the only /usr the build sees, with
# the Nix sandbox on or off.
set -eu
bb=$builder
if [ "${1:-}" != --inside ]; then
  exec "$bb" unshare --user --map-root-user --mount "$bb" sh -eu "$0" --inside "$@"
fi
shift
fail() { echo "enter: $*" >&2; exit 1; }
[ -d "$root/nix" ] || fail "$root is not a build root"
$bb mount --rbind /nix "$root/nix"
$bb mount --rbind /dev "$root/dev"
$bb mount --rbind /proc "$root/proc"
$bb mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
case $TMPDIR in
  /build) ;;
  /tmp/*) $bb mkdir -p "$root$TMPDIR" ;;
  *) fail "build directory $TMPDIR: neither /build nor below /tmp" ;;
esac
$bb mount --bind "$TMPDIR" "$root$TMPDIR"
export PATH=/usr/bin:/usr/sbin
exec $bb chroot "$root" /bin/sh -c 'cd "$TMPDIR" && exec "$@"' enter "$@"
