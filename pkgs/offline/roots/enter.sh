# Runs a builder inside a build root (./default.nix): `busybox sh enter.sh CMD ARGS…`
# with $root the root's store path and $builder the bootstrap busybox.
#
# 1. In a new user and mount namespace (uid 0 there, the build user outside), the
#    root gets the store, /dev, /proc, a tmpfs /tmp and the build directory mounted
#    on its empty mount points, and becomes the namespace's root (pivot_root).
# 2. There, CMD runs in a nested user namespace as uid 1000 (nixbld in the root's
#    /etc/passwd), not root: like a Nix build user, it can't chown, so `cp -a` from
#    the store keeps going as it does in nixpkgs.
# The root's /usr is the only /usr the build sees, with the Nix sandbox on or off.
#
# Where Nix builds as real root (no build users: inside a chroot, where neither Nix's
# sandbox nor user namespaces can be had), the same mounts are made in a mount
# namespace of its own and the builder runs chrooted in the root, as root.
set -eu
bb=$builder
fail() { echo "enter: $*" >&2; exit 1; }
case ${1:-} in
  --mount)
    shift
    [ -d "$root/nix" ] || fail "$root is not a build root"
    if [ "${ENTER_AS_ROOT:-}" = 1 ]; then
      # Nothing mounted here may reach the caller's namespace. In a chroot, / is no
      # mount point and can't be made private: go on only if no mount is shared.
      if ! $bb mount --make-rprivate / 2>/dev/null && $bb grep -q ' shared:' /proc/self/mountinfo; then
        fail "/ can't be made private and shared mounts exist: mounts would leak out"
      fi
    fi
    $bb mount --bind "$root" "$root"
    $bb mount --rbind /nix "$root/nix"
    $bb mount --rbind /dev "$root/dev"
    $bb mount --rbind /proc "$root/proc"
    $bb mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    # The build directory is /build inside the root whatever it is outside (/build in
    # the sandbox, /tmp/nix-build-… without): paths compiled into outputs are the same.
    $bb mount --bind "$TMPDIR" "$root/build"
    # Nix's passAsFile gives `<name>Path` variables below the build directory: the same
    # files below /build.
    top=$NIX_BUILD_TOP
    for v in $($bb env | $bb sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*Path\)=.*/\1/p'); do
      eval "val=\${$v}"
      case $val in "$top"/*) export "$v=/build${val#"$top"}" ;; esac
    done
    export TMPDIR=/build TEMPDIR=/build TMP=/build TEMP=/build NIX_BUILD_TOP=/build
    if [ "${ENTER_AS_ROOT:-}" = 1 ]; then
      unset ENTER_AS_ROOT
      export PATH=/usr/bin:/usr/sbin
      exec $bb chroot "$root" /bin/sh -c 'cd "$TMPDIR" && exec "$@"' enter "$@"
    fi
    # pivot_root, not a bare chroot: a chrooted process may not create the nested
    # user namespace below. The old root is then hidden under an empty tmpfs.
    $bb mkdir "$root/tmp/.old"
    cd "$root"
    $bb pivot_root . tmp/.old
    $bb umount -l /tmp/.old 2>/dev/null || $bb mount -t tmpfs -o size=4k,mode=0 none /tmp/.old
    exec $bb chroot . "$bb" sh -eu "$0" --user "$@"
    ;;
  --user)
    shift
    export PATH=/usr/bin:/usr/sbin
    # The child unshares, says so, and waits until its uid and gid maps are written
    # from here (where uid 0 may write them).
    sync=$(mktemp -d /tmp/enter.XXXXXX)
    $bb mkfifo "$sync/ready" "$sync/go"
    $bb unshare --user "$bb" sh -c 'echo > "$0/ready"; read -r _ < "$0/go"; cd "$TMPDIR"; exec "$@"' "$sync" "$@" &
    child=$!
    read -r _ < "$sync/ready"
    echo "1000 0 1" > "/proc/$child/uid_map"
    echo deny > "/proc/$child/setgroups"
    echo "100 0 1" > "/proc/$child/gid_map"
    echo > "$sync/go"
    status=0
    wait "$child" || status=$?
    $bb rm -rf "$sync"
    exit "$status"
    ;;
  *)
    read -r inner outer count < /proc/self/uid_map
    if [ "$($bb id -u)" = 0 ] && [ "$inner $outer $count" = "0 0 4294967295" ]; then
      export ENTER_AS_ROOT=1
      # busybox's unshare always changes the propagation of /, which a chroot's / (no
      # mount point) refuses: the root's own unshare, through the root's loader.
      lib=$root/usr/lib/x86_64-linux-gnu
      exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/bin/unshare" \
        --mount --propagation unchanged "$bb" sh -eu "$0" --mount "$@"
    fi
    exec "$bb" unshare --user --map-root-user --mount "$bb" sh -eu "$0" --mount "$@"
    ;;
esac
