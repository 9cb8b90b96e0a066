# Builder of the offline fetchurl: resolves mirror://debian/ against the repositories
# of the machine's apt configuration and downloads with apt's own helper.
set -euo pipefail
case "$url" in
  mirror://debian/*)
    path=${url#mirror://debian/}
    mapfile -t bases < <(apt-get indextargets --format '$(REPO_URI)' | sort -u)
    ;;
  http://*|https://*) path=""; bases=("$url") ;;
  *) echo "fetchurl: unsupported URL $url" >&2; exit 1 ;;
esac
[ ${#bases[@]} -gt 0 ] || { echo "fetchurl: the machine's apt configuration names no repository" >&2; exit 1; }
for base in "${bases[@]}"; do
  src="${base%/}${path:+/$path}"
  echo "fetchurl: trying $src" >&2
  if /usr/lib/apt/apt-helper download-file "$src" "$TMPDIR/download" >&2; then
    mv "$TMPDIR/download" "$out"
    exit 0
  fi
done
echo "fetchurl: $url not found in any repository the machine's apt uses (${bases[*]}); run 'rdma-nix fetch' on a machine that has it" >&2
exit 1
