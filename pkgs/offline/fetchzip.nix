# fetchzip for the offline platform: a fixed-output derivation whose output is the
# tree a tarball unpacks to, its single top directory stripped, pinned by that tree's
# NAR hash (as nixpkgs' fetchzip). `rdma-nix fetch` adds the tree beforehand
# (`nix-store --add-fixed --recursive`), which makes it valid without any download;
# otherwise ./fetch.sh downloads the first of `urls` that answers and unpacks it, and
# Nix checks the tree's hash.
{ lib, system, bootstrapBusybox, debianMirror }:

{ urls ? [ url ], url ? null, hash, name ? "source", passthru ? { }, meta ? { } }:

let
  drv = builtins.derivation {
    inherit name system debianMirror;
    urls = lib.concatStringsSep " " urls;
    unpack = "1";
    builder = "${bootstrapBusybox}/bin/busybox";
    args = [ "sh" "-e" ./fetch.sh ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = hash;
    preferLocalBuild = true;
  };
in
drv // passthru // {
  inherit urls passthru;
  meta = meta // { offline = "pinned by its tree's NAR hash; added by `rdma-nix fetch`"; };
}
