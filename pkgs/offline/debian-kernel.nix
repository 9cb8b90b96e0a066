# A kernel from Debian's packages, shaped like nixpkgs' kernel derivation:
#   out     — bzImage, System.map, config (the image's /boot files)
#   modules — lib/modules/<modDirVersion>/…, with modules.dep made by depmod
#   dev     — lib/modules/<modDirVersion>/{build,source}: the headers trees and kbuild
#             tools, with the absolute /usr/src and /usr/lib paths of Debian's
#             packages rewritten into the store
# `dev` is a derivation of its own (`kernel.dev`, as nixpkgs' output is reached): an
# out-of-tree module build reads only the headers, so it doesn't wait for the image
# packages' 100-400 MB of modules, which only the VM checks boot.
# passthru: version, modDirVersion, dev, configfile, moduleBuildDependencies,
# commonMakeFlags, rdmaInTree.
{ lib, stdenv, fetchurl, debianInputs, pahole }:

{ name, root, image, imageParts ? [ ], headers, headersCommon, kbuild, rdmaInTree }:

let
  pin = pkg: fetchurl { inherit (debianInputs.${pkg}) url hash name; };
  modDirVersion = lib.removePrefix "linux-image-" image;

  # The headers, common headers and kbuild tools in Debian's relative layout
  # (headers' scripts -> ../../lib/linux-kbuild-*): their /usr/src and /usr/lib but
  # /usr/lib/modules, unpacked straight into $out (copying their 17,000 files again
  # doubled the build). Then the absolute paths are pointed at the store.
  dev = stdenv.mkDerivation {
    pname = "linux-debian-headers";
    version = modDirVersion;
    headerDebs = map pin [ headers headersCommon kbuild ];
    dontUnpack = true;
    dontConfigure = true;
    dontBuild = true;
    installPhase = ''
      rel=${modDirVersion}
      for f in $headerDebs; do dpkg-deb -x $f $out; done
      rm -rf $out/lib $out/usr/lib/modules $out/usr/share
      for d in $out/* $out/usr/*; do
        case $d in
          $out/usr | $out/usr/src | $out/usr/lib) ;;
          *) echo "$d: unexpected in the headers packages" >&2; exit 1 ;;
        esac
      done
      build=$out/usr/src/linux-headers-$rel
      mkdir -p $out/lib/modules/$rel
      grep -rlF /usr/src/ $build --include=Makefile \
        | xargs -r sed -i "s|/usr/src/|$out/usr/src/|g"
      for link in $(find $out/usr -type l -lname '/*'); do
        target=$(readlink $link)
        case $target in /usr/*) ln -sfn $out$target $link ;; esac
      done
      ln -s $build $out/lib/modules/$rel/build
      ln -s $out/usr/src/${lib.removePrefix "linux-headers-" headersCommon} $out/lib/modules/$rel/source
    '';
    meta.description = "Headers and kbuild tools of Debian kernel ${modDirVersion} (${name})";
  };
in
stdenv.mkDerivation (finalAttrs: {
  pname = "linux-debian";
  version = modDirVersion;
  outputs = [ "out" "modules" ];

  # The packages go straight into the outputs, not into the build directory first:
  # copying their files again took most of the build (ext4 allocating inodes).
  imageDebs = map pin ([ image ] ++ imageParts);
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;

  installPhase = ''
    rel=${modDirVersion}
    mkdir -p $out $modules/lib/modules
    deb=$modules/.deb
    for f in $imageDebs; do dpkg-deb -x $f $deb; done
    # Older packages put the modules in /lib/modules and the image in /boot; newer
    # ones everything in /usr/lib/modules/<release>/.
    mods=$deb/lib/modules/$rel
    [ -d $mods ] || mods=$deb/usr/lib/modules/$rel
    [ -d $mods ] || { echo "no modules of $rel in ${image}" >&2; exit 1; }
    boot() {
      for f in $deb/boot/$1-$rel $mods/$1; do
        if [ -f $f ]; then echo $f; return; fi
      done
      echo "no $1 of $rel in the image packages" >&2; exit 1
    }
    mv $(boot vmlinuz) $out/bzImage
    mv $(boot System.map) $out/System.map
    mv $(boot config) $out/config
    # Nothing else of the image packages is kept: fail if there is more.
    for d in $deb/usr/src $deb/usr/lib/*; do
      if [ -e $d ] && [ $d != $deb/usr/lib/modules ]; then
        echo "$d: the image packages hold more than modules and /boot" >&2; exit 1
      fi
    done
    mv $mods $modules/lib/modules/
    rm -rf $deb
    rm -f $modules/lib/modules/$rel/{build,source,vmlinuz,System.map,config}
    depmod -b $modules $rel
  '';

  passthru = {
    inherit modDirVersion;
    kernelName = name;
    # The build root (Debian suite) whose compiler built this kernel: its modules are
    # built there too.
    rootName = root;
    # As nixpkgs' kernels: the stdenv that built it, for its out-of-tree modules.
    inherit stdenv;
    # The soft-RDMA drivers this kernel ships (stack.toml; the tests check its config).
    inherit rdmaInTree;
    inherit dev;
    configfile = "${finalAttrs.finalPackage}/config";
    # As nixpkgs' kernels: what building an out-of-tree module needs (BTF on 6.12).
    moduleBuildDependencies = [ pahole ];
    commonMakeFlags = [ ];
  };

  meta = {
    description = "Debian kernel ${modDirVersion} (${name}) from Debian's packages";
    license = lib.licenses.gpl2Only;
  };
})
