# The offline platform's ground floor: the bootstrap busybox, the fetchers, the build
# roots of pinned Debian packages (one per suite: roots/*.toml) with a stdenv running
# its builders chrooted in one, the roots' tools under their nixpkgs names, the VM
# runner and the platform's own tests. Part of pkgs/offline/default.nix's fixed point
# (`self`: the whole set).
{ lib, system, debianMirror, bootstrapUrl, vmCpus, self }:

let
  bootstrap = import ../generated/bootstrap.nix;

  # A tool or library of the build root, standing where nixpkgs passes a package: the
  # root's /usr, which is the /usr every builder sees.
  rootTool = name: {
    inherit name;
    rootTool = name;
    outPath = "/usr";
    meta.description = "${name} from the build root";
  };
in
{
  # The first store path: bin/busybox, pinned by the tree's NAR hash. `rdma-nix
  # fetch` takes it out of its pinned package (pkgs/generated/bootstrap.nix).
  # Without that, Nix downloads `bootstrapUrl`: a NAR of the same tree.
  bootstrapBusybox = builtins.derivation {
    inherit (bootstrap) name;
    system = "builtin";
    builder = "builtin:fetchurl";
    url = if bootstrapUrl != "" then bootstrapUrl
      else "rdma-nix-fetch:${bootstrap.package}/${bootstrap.file}";
    unpack = true;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = bootstrap.hash;
    preferLocalBuild = true;
  };

  fetchurl = import ./fetchurl.nix { inherit system debianMirror; inherit (self) bootstrapBusybox; };
  fetchzip = import ./fetchzip.nix { inherit lib system debianMirror; inherit (self) bootstrapBusybox; };

  # The build roots, by name (roots/<name>.toml; pins in pkgs/generated/roots/).
  roots = lib.genAttrs
    (map (f: lib.removeSuffix ".nix" f) (builtins.attrNames (builtins.readDir ../generated/roots)))
    (import ./roots { inherit lib system; inherit (self) fetchurl bootstrapBusybox; });

  # A stdenv whose builders run in a root; `stdenv` runs in bookworm's.
  stdenvIn = root: import ./stdenv { inherit lib system root; inherit (self) bootstrapBusybox; };
  stdenv = self.stdenvIn self.roots.bookworm;

  runCommand = name: env: buildCommand:
    self.stdenv.mkDerivation ({ inherit name buildCommand; } // env);
  writeText = name: text: self.runCommand name { inherit text; passAsFile = [ "text" ]; } ''
    cp "$textPath" "$out"
  '';

  # The root's tools and libraries under their nixpkgs names.
  cmake = rootTool "cmake";
  ninja = rootTool "ninja";
  pkg-config = rootTool "pkg-config";
  # Debian's layout of site packages; python3.pkgs as nixpkgs has it, from the root.
  python3 = rootTool "python3" // {
    sitePackages = "lib/python3/dist-packages";
    pythonVersion = "3.11";
    libPrefix = "python3.11";
    pkgs.cython = rootTool "cython3";
  };
  perl = rootTool "perl";
  libnl = rootTool "libnl";
  udev = rootTool "udev";
  pciutils = rootTool "pciutils";
  kmod = rootTool "kmod";
  pahole = rootTool "pahole";
  qemu = rootTool "qemu";
  systemd = rootTool "systemd";
  iproute2 = rootTool "iproute2";
  coreutils = rootTool "coreutils";

  debianInputs = import ../generated/debian-inputs.nix;

  busybox = self.callPackage ./busybox.nix { };

  runVM = self.callPackage ./vm { inherit vmCpus; };


  # nixpkgs' replaceDirectDependencies (what system.replaceDependencies applies).
  replaceDirectDependencies = self.callPackage ./replace-direct-dependencies.nix { };

  # The platform's own checks.
  tests = self.callPackage ./tests { };
}
