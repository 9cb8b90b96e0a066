# fetchurl for the offline platform: a fixed-output derivation, so that a file added
# beforehand with `rdma-nix fetch` (`nix-store --add-fixed sha256`) makes it valid
# without any download. Otherwise `mirror://debian/…` is fetched through apt's own
# downloader from the repositories in the machine's apt configuration, and Nix
# checks the hash (a mismatch names both hashes).
{ lib, system, hostPath }:

{ url, hash, name ? baseNameOf url, passthru ? { }, meta ? { } }:

let
  drv = builtins.derivation {
    inherit name url system;
    builder = "/bin/bash";
    args = [ "-e" ./fetchurl.sh ];
    PATH = hostPath;
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = hash;
    # Host state (apt's configuration) decides where a mirror:// URL is fetched from.
    preferLocalBuild = true;
  };
in
drv // passthru // { inherit url passthru; meta = meta // { offline = "fetched by the offline platform (apt's downloader)"; }; }
