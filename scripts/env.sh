# Sourced by the project's scripts: Nix reads the project's own settings
# (scripts/nix/nix.conf) whatever /etc/nix holds.
NIX_CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/nix" && pwd)
export NIX_CONF_DIR
# Debian's nix-bin, run as root, uses the local store directly.
unset NIX_REMOTE
# Inside a chroot (a container made with chroot, as some CI runners are) the kernel
# refuses user namespaces to every process (user_namespaces(7): EPERM in a chroot), so
# a build can't enter its root unprivileged. Nix's sandbox itself can be made to start
# there (a bind mount of / and build users: measured), but its builders would then run
# unprivileged without one. So builds run as root without the sandbox, each still
# inside its build root (pkgs/offline/roots/enter.sh makes the same mounts as root);
# the derivations, and the outputs, are the same (scripts/reproducible).
if ! mountpoint -q / 2>/dev/null; then
  export NIX_CONFIG=$'sandbox = false\nbuild-users-group ='
  echo "rdma-nix: / is not a mount point (a chroot): builds run as root, sandbox off, inside their build roots" >&2
fi
