# The offline platform's stdenv: nixpkgs' `stdenv.mkDerivation` interface (phases,
# hooks, multiple outputs, finalAttrs, overrideAttrs, passthru, meta) over a build
# root's toolchain (../roots): every builder runs chrooted in the root, so its
# compiler, cmake, ninja and libraries are the pinned Debian packages of that root.
{ lib, system, root, bootstrapBusybox }:

let
  b = builtins;

  # What the builder environment may hold: strings, and lists of strings.
  toEnv = v:
    if b.isBool v then (if v then "1" else "")
    else if v == null then ""
    else if b.isList v then map toEnv v
    else v;

  # nixpkgs' makeDerivationExtensible: `rattrs` is `finalAttrs: { ... }`.
  extensible = rattrs:
    let
      args = rattrs (args // { inherit finalPackage; });
      finalPackage = build rattrs args;
    in
    finalPackage;

  # nixpkgs' chooseDevOutputs: a dependency with a `dev` output is taken by that output
  # (which propagates the rest), unless another output was named (`x.out`, `x.lib`).
  chooseDev = x:
    if b.isAttrs x && x ? dev && (x.outputName or "out") == b.head (x.outputs or [ "out" ]) then x.dev else x;
  depAttrs = [ "nativeBuildInputs" "buildInputs" "propagatedBuildInputs" "propagatedNativeBuildInputs" ];

  build = rattrs: attrs0:
    let
      attrs = attrs0 // b.mapAttrs (_: map chooseDev) (b.intersectAttrs (lib.genAttrs depAttrs (_: null)) attrs0);
      outputs = attrs.outputs or [ "out" ];
      passthru = attrs.passthru or { };
      meta = {
        platforms = lib.platforms.linux;
        offline = "Built by rdma-nix's offline platform inside the build root ${root.rootName} (Debian ${root.suite}).";
      } // (attrs.meta or { });
      drvAttrs = b.removeAttrs attrs [ "passthru" "meta" "finalPackage" ];
      env = b.mapAttrs (_: toEnv) (b.removeAttrs drvAttrs [ "env" ]) // (attrs.env or { });
      drv = b.derivation (env // {
        inherit system outputs;
        name = attrs.name or "${attrs.pname}-${attrs.version}";
        builder = "${bootstrapBusybox}/bin/busybox";
        args = [ "sh" "-e" ../roots/enter.sh "/bin/bash" "-e" ./setup.sh ];
        inherit root;
        # nixpkgs' cmake setup hook, as a flag: cmake among the native inputs.
        cmakeConfigure = toEnv (b.any (x: (x.rootTool or null) == "cmake") (attrs.nativeBuildInputs or [ ]));
      });
      overrideAttrs = f0:
        let
          f = self: super:
            let
              x = f0 super;
            in
            if b.isFunction x then f0 self super else x;
        in
        extensible (
          self:
          let
            super = rattrs self;
          in
          super // f self super
        );
    in
    drv // passthru // {
      inherit meta passthru overrideAttrs;
      # Fixed-point attributes, as `finalAttrs` sees them.
      pname = attrs.pname or null;
      version = attrs.version or null;
    };

  mkDerivation = fnOrAttrs:
    extensible (if b.isFunction fnOrAttrs then fnOrAttrs else (_: fnOrAttrs));
in
{
  inherit mkDerivation system root;
  hostPlatform = { inherit system; isLinux = true; isx86_64 = true; isStatic = false; isi686 = false; };
  buildPlatform = { inherit system; };
  cc = { isGNU = true; };
}
