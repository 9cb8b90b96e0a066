# Sourced by the project's scripts: Nix reads the project's own settings
# (scripts/nix/nix.conf) whatever /etc/nix holds.
NIX_CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/nix" && pwd)
export NIX_CONF_DIR
# Debian's nix-bin, run as root, uses the local store directly.
unset NIX_REMOTE
# Inside a chroot (a container made with chroot, as some CI runners are), Nix's sandbox
# can't start ("unable to make '/' private") and the kernel refuses user namespaces:
# builds then run as root without the sandbox, each still inside its build root
# (pkgs/offline/roots/enter.sh); the derivations, and so the outputs, are the same.
if ! mountpoint -q / 2>/dev/null; then
  export NIX_CONFIG=$'sandbox = false\nbuild-users-group ='
  echo "rdma-nix: / is not a mount point (a chroot): builds run as root, sandbox off, inside their build roots" >&2
fi
