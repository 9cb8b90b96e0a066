# fetchzip for the offline platform: a fixed-output derivation whose output is the
# tree a tarball unpacks to, its single top directory stripped, pinned by that tree's
# NAR hash (as nixpkgs' fetchzip). `rdma-nix fetch` adds the tree beforehand
# (`nix-store --add-fixed --recursive`), which makes it valid without any download;
# otherwise the first of `urls` that downloads (mirror://debian/… through apt's
# downloader) is unpacked, and Nix checks the tree's hash.
{ lib, system, hostPath }:

{ urls ? [ url ], url ? null, hash, name ? "source", passthru ? { }, meta ? { } }:

let
  drv = builtins.derivation {
    inherit name system;
    urls = lib.concatStringsSep " " urls;
    builder = "/bin/bash";
    args = [ "-e" ./fetchzip.sh ];
    PATH = hostPath;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = hash;
    preferLocalBuild = true;
  };
in
drv // passthru // {
  inherit urls passthru;
  meta = meta // { offline = "fetched by the offline platform (apt's downloader), unpacked"; };
}
