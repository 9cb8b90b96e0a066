# Builder of the offline fetchurl and fetchzip, run by the bootstrap busybox with no
# PATH. Normally never runs: `rdma-nix fetch` adds every pinned file and tree to the
# store beforehand (asking the machine's apt where its mirror is). Where that wasn't
# done (a Hydra, say), it downloads the first of $urls that answers, with busybox's
# wget: http(s) URLs as they are, mirror://debian/… below $debianMirror (the
# platform's `debianMirror` argument; the repository names no mirror);
# file:///nix/store/… URLs (a store path among the inputs) are copied. With
# $unpack set, the tarball's single top directory becomes $out. Nix checks the hash.
set -eu
bb=$builder
tried=
for url in $urls; do
  case $url in
    mirror://debian/*)
      if [ -z "$debianMirror" ]; then
        tried="$tried $url (no debianMirror given)"
        continue
      fi
      src=${debianMirror%/}/${url#mirror://debian/} ;;
    http://* | https://*) src=$url ;;
    file:///nix/store/*) src=$url ;;
    *) echo "fetch: unsupported URL $url" >&2; exit 1 ;;
  esac
  echo "fetch: trying $src" >&2
  tried="$tried $src"
  $bb rm -f "$TMPDIR/download"
  case $src in
    # A store path among the derivation's inputs (tests, local mirrors).
    file://*) $bb cp "${src#file://}" "$TMPDIR/download" || continue ;;
    *) $bb wget -q -O "$TMPDIR/download" "$src" || continue ;;
  esac
  if [ -z "${unpack:-}" ]; then
    $bb mv "$TMPDIR/download" "$out"
    exit 0
  fi
  $bb mkdir "$TMPDIR/unpack"
  case $src in
    *.xz | *.txz) $bb unxz -c "$TMPDIR/download" ;;
    *.gz | *.tgz) $bb gunzip -c "$TMPDIR/download" ;;
    *) $bb cat "$TMPDIR/download" ;;
  esac | $bb tar -x -C "$TMPDIR/unpack"
  set -- "$TMPDIR"/unpack/* "$TMPDIR"/unpack/.[!.]*
  for x; do [ -e "$x" ] || shift; done
  if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "fetch: $src does not hold exactly one top-level directory" >&2
    exit 1
  fi
  $bb mv "$1" "$out"
  exit 0
done
echo "fetch: nothing could be downloaded (tried:$tried); run 'rdma-nix fetch' where apt reaches a Debian mirror, or pass --argstr debianMirror URL" >&2
exit 1
