# A kernel from Debian's packages, shaped like nixpkgs' kernel derivation:
#   out     — bzImage, System.map, config (the image's /boot files)
#   modules — lib/modules/<modDirVersion>/…, with modules.dep made by depmod
#   dev     — lib/modules/<modDirVersion>/{build,source}: the headers trees and kbuild
#             tools, with the absolute /usr/src and /usr/lib paths of Debian's
#             packages rewritten into the store
# passthru: version, modDirVersion, configfile, moduleBuildDependencies, commonMakeFlags,
# rdmaInTree.
{ lib, stdenv, fetchurl, debianInputs, pahole }:

{ name, root, image, imageParts ? [ ], headers, headersCommon, kbuild, rdmaInTree }:

let
  pin = pkg: fetchurl { inherit (debianInputs.${pkg}) url hash name; };
  modDirVersion = lib.removePrefix "linux-image-" image;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "linux-debian";
  version = modDirVersion;
  outputs = [ "out" "modules" "dev" ];

  # The packages go straight into the outputs, not into the build directory first:
  # copying their 30,000 files again took most of the build (ext4 allocating inodes).
  imageDebs = map pin ([ image ] ++ imageParts);
  headerDebs = map pin [ headers headersCommon kbuild ];
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;

  installPhase = ''
    rel=${modDirVersion}
    mkdir -p $out $modules/lib/modules $dev
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

    # The headers, common headers and kbuild tools in Debian's relative layout
    # (headers' scripts -> ../../lib/linux-kbuild-*): their /usr/src and /usr/lib
    # but /usr/lib/modules. Then the absolute paths are pointed at the store.
    for f in $headerDebs; do dpkg-deb -x $f $dev; done
    rm -rf $dev/lib $dev/usr/lib/modules $dev/usr/share
    for d in $dev/* $dev/usr/*; do
      case $d in
        $dev/usr | $dev/usr/src | $dev/usr/lib) ;;
        *) echo "$d: unexpected in the headers packages" >&2; exit 1 ;;
      esac
    done
    mkdir -p $dev/lib/modules/$rel
    grep -rlF /usr/src/ $dev/usr/src/linux-headers-$rel --include=Makefile \
      | xargs -r sed -i "s|/usr/src/|$dev/usr/src/|g"
    for link in $(find $dev/usr -type l -lname '/*'); do
      target=$(readlink $link)
      case $target in /usr/*) ln -sfn $dev$target $link ;; esac
    done
    ln -s $dev/usr/src/linux-headers-$rel $dev/lib/modules/$rel/build
    ln -s $dev/usr/src/${lib.removePrefix "linux-headers-" headersCommon} $dev/lib/modules/$rel/source
    ln -s $modules/lib/modules/$rel/kernel $dev/lib/modules/$rel/kernel
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
