# A build root: the Debian packages pinned in pkgs/generated/roots/<name>.nix
# (resolved from roots/<name>.toml by `rdma-nix root refresh`), unpacked into one
# store path by the bootstrap busybox. Builders run inside it (./enter.sh): its /usr
# is the only /usr they see. Built once per root, shared by every derivation of its
# suite.
{ lib, system, fetchurl, bootstrapBusybox }:

name:

let
  pins = import ../../generated/roots/${name}.nix;
  debs = lib.mapAttrsToList (_: p: fetchurl {
    inherit (p) url hash;
    # Store names can't hold the `~` or `%` of a pool file name.
    name = builtins.replaceStrings [ "~" "%" ] [ "_" "_" ] (baseNameOf p.url);
  }) pins.packages;
in
builtins.derivation {
  name = "root-${name}";
  inherit system;
  builder = "${bootstrapBusybox}/bin/busybox";
  args = [ "sh" "-e" ./unpack.sh ];
  inherit debs;
  # What dpkg's maintainer scripts would have set up and that the builds rely on:
  # `LINK=TARGET`, made only when LINK is missing and TARGET exists (checked).
  alternatives = [
    "usr/bin/cc=gcc"
    "usr/bin/c++=g++"
    "usr/bin/awk=mawk"
    "usr/bin/sh=dash"
    "usr/bin/yacc=bison.yacc"
    "usr/bin/lex=flex"
  ];
}
// {
  inherit (pins) suite downloadSize;
  packageCount = builtins.length debs;
  rootName = name;
}
