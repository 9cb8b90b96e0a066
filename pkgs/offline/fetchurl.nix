# fetchurl for the offline platform: a fixed-output derivation, so that a file added
# beforehand with `rdma-nix fetch` (`nix-store --add-fixed sha256`) makes it valid
# without any download. Otherwise ./fetch.sh downloads it (mirror://debian/… below
# `debianMirror`) with the bootstrap busybox, and Nix checks the hash (a mismatch
# names both hashes).
{ system, bootstrapBusybox, debianMirror }:

{ url, hash, name ? baseNameOf url, passthru ? { }, meta ? { } }:

let
  drv = builtins.derivation {
    inherit name system debianMirror;
    urls = url;
    builder = "${bootstrapBusybox}/bin/busybox";
    args = [ "sh" "-e" ./fetch.sh ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = hash;
    preferLocalBuild = true;
  };
in
drv // passthru // { inherit url passthru; meta = meta // { offline = "pinned by hash; added by `rdma-nix fetch`"; }; }
