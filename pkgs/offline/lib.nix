# The small part of nixpkgs' `lib` that the package files in pkgs/ use, written for
# the offline platform. Each function has the name, arguments and meaning of the
# nixpkgs function it stands for; nothing else belongs here.
let
  b = builtins;
in
rec {
  inherit (b) attrNames attrValues concatMap concatStringsSep elem filter foldl' head length listToAttrs;
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalString = cond: s: if cond then s else "";
  optionalAttrs = cond: as: if cond then as else { };
  concatStrings = b.concatStringsSep "";
  concatMapStrings = f: xs: b.concatStringsSep "" (map f xs);
  concatLists = b.concatLists;
  concatMapStringsSep = sep: f: xs: b.concatStringsSep sep (map f xs);
  mapAttrs = b.mapAttrs;
  mapAttrs' = f: as: b.listToAttrs (map (n: f n as.${n}) (b.attrNames as));
  mapAttrsToList = f: as: map (n: f n as.${n}) (b.attrNames as);
  filterAttrs = pred: as: b.listToAttrs (b.concatMap (n: if pred n as.${n} then [ { name = n; value = as.${n}; } ] else [ ]) (b.attrNames as));
  nameValuePair = name: value: { inherit name value; };
  genAttrs = names: f: b.listToAttrs (map (n: nameValuePair n (f n)) names);
  escapeShellArg = s: "'${b.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
  escapeShellArgs = xs: b.concatStringsSep " " (map escapeShellArg xs);
  getOutput = output: pkg: pkg.${output} or pkg;
  getBin = getOutput "bin";
  getLib = getOutput "lib";
  getDev = getOutput "dev";
  makeSearchPath = sub: pkgs: b.concatStringsSep ":" (map (p: "${p}/${sub}") pkgs);
  makeBinPath = makeSearchPath "bin";
  makeLibraryPath = makeSearchPath "lib";
  assertMsg = pred: msg: pred || b.throw msg;
  hasPrefix = pref: str: b.substring 0 (b.stringLength pref) str == pref;
  removePrefix = prefix: s:
    let
      n = b.stringLength prefix;
    in
    if b.substring 0 n s == prefix then b.substring n (b.stringLength s - n) s else s;
  removeSuffix = suffix: s:
    let
      n = b.stringLength suffix;
      l = b.stringLength s;
    in
    if l >= n && b.substring (l - n) n s == suffix then b.substring 0 (l - n) s else s;
  unique = b.foldl' (acc: e: if b.elem e acc then acc else acc ++ [ e ]) [ ];
  versionAtLeast = v1: v2: b.compareVersions v1 v2 >= 0;
  versionOlder = v1: v2: b.compareVersions v2 v1 == 1;

  licenses = {
    gpl2Only = { spdxId = "GPL-2.0-only"; };
    bsd2 = { spdxId = "BSD-2-Clause"; };
    mit = { spdxId = "MIT"; };
  };
  platforms.linux = [ "x86_64-linux" ];
  maintainers = { };
}
