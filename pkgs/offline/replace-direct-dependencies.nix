# nixpkgs' replaceDirectDependencies for the offline platform, with its interface and
# its method: the store path is dumped as a NAR, every occurrence of each old
# dependency's store path name (hash and name) is replaced by the new one's, which
# must have the same length, and the NAR restored as a new store path. What
# system.replaceDependencies does to every package of a NixOS system's closure.
{ lib, runCommand }:

{ drv, replacements ? [ ] }:

let
  base = x: builtins.baseNameOf (toString x);
in
assert lib.assertMsg
  (builtins.all ({ oldDependency, newDependency }: builtins.stringLength (base oldDependency) == builtins.stringLength (base newDependency)) replacements)
  "replaceDirectDependencies: each old and new dependency must have store paths of the same length";
if replacements == [ ] then
  drv
else
  runCommand (builtins.unsafeDiscardStringContext (builtins.substring 33 (builtins.stringLength (base drv)) (base drv))) { } ''
    nix-store --dump ${drv} \
      | sed 's|${base drv}|'"$(basename "$out")"'|g' \
      | sed ${lib.concatMapStringsSep " " ({ oldDependency, newDependency }: "-e 's|${base oldDependency}|${base newDependency}|g'") replacements} \
      | nix-store --restore $out
  ''
