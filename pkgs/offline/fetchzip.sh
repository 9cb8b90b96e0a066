# Builder of the offline fetchzip: downloads the first of $urls that any of the
# machine's apt repositories (for mirror://debian/…) or the URL itself serves, with
# apt's own helper, and unpacks it with its top directory stripped.
set -euo pipefail
mapfile -t bases < <(apt-get indextargets --format '$(REPO_URI)' | sort -u)
tried=()
for url in $urls; do
  case "$url" in
    mirror://debian/*) candidates=(); for b in "${bases[@]}"; do candidates+=("${b%/}/${url#mirror://debian/}"); done ;;
    http://*|https://*) candidates=("$url") ;;
    *) echo "fetchzip: unsupported URL $url" >&2; exit 1 ;;
  esac
  for c in "${candidates[@]}"; do
    echo "fetchzip: trying $c" >&2
    tried+=("$c")
    if /usr/lib/apt/apt-helper download-file "$c" "$TMPDIR/download" >&2; then
      mkdir "$TMPDIR/unpack"
      tar xf "$TMPDIR/download" -C "$TMPDIR/unpack" --no-same-owner
      top=("$TMPDIR"/unpack/*)
      if [ ${#top[@]} -ne 1 ] || [ ! -d "${top[0]}" ] || [ -n "$(ls -A "$TMPDIR/unpack" | grep -v "^$(basename "${top[0]}")\$")" ]; then
        echo "fetchzip: $c does not hold exactly one top-level directory" >&2
        exit 1
      fi
      mv "${top[0]}" "$out"
      exit 0
    fi
  done
done
echo "fetchzip: none of ${tried[*]} could be downloaded; run 'rdma-nix fetch' on a machine that has them" >&2
exit 1
