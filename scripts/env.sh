# Sourced by the project's scripts: Nix reads the project's own settings
# (scripts/nix/nix.conf) whatever /etc/nix holds.
NIX_CONF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/nix" && pwd)
export NIX_CONF_DIR
# Debian's nix-bin, run as root, uses the local store directly.
unset NIX_REMOTE
