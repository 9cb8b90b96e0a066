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

  srcs = map pin ([ image ] ++ imageParts ++ [ headers headersCommon kbuild ]);
  sourceRoot = ".";
  dontConfigure = true;
  dontBuild = true;

  installPhase = ''
    rel=${modDirVersion}
    # Older packages put the modules in /lib/modules and the image in /boot; newer
    # ones everything in /usr/lib/modules/<release>/.
    mods=deb/lib/modules/$rel
    [ -d $mods ] || mods=deb/usr/lib/modules/$rel
    [ -d $mods ] || { echo "no modules of $rel in ${image}" >&2; exit 1; }
    boot() {
      for f in deb/boot/$1-$rel $mods/$1; do
        if [ -f $f ]; then echo $f; return; fi
      done
      echo "no $1 of $rel in the image packages" >&2; exit 1
    }
    mkdir -p $out $modules/lib/modules $dev/lib/modules/$rel $dev/usr
    cp $(boot vmlinuz) $out/bzImage
    cp $(boot System.map) $out/System.map
    cp $(boot config) $out/config

    cp -a $mods $modules/lib/modules/
    rm -f $modules/lib/modules/$rel/{build,source,vmlinuz,System.map,config}
    depmod -b $modules $rel

    # Keep Debian's relative layout (headers' scripts -> ../../lib/linux-kbuild-*),
    # then point the absolute paths at the store.
    cp -a deb/usr/src $dev/usr/
    mkdir -p $dev/usr/lib
    for d in deb/usr/lib/*; do
      [ "$d" = deb/usr/lib/modules ] || cp -a $d $dev/usr/lib/
    done
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
