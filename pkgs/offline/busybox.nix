# Debian's static busybox, for initramfs images.
{ lib, stdenv, fetchurl, debianInputs }:

let
  # Store names can't hold the epoch's ':'.
  debVersion = debianInputs.busybox-static.version;
  noEpoch = builtins.match "[0-9]+:(.*)" debVersion;
in
stdenv.mkDerivation {
  pname = "busybox-static";
  version = if noEpoch == null then debVersion else builtins.head noEpoch;
  src = fetchurl { inherit (debianInputs.busybox-static) url hash name; };
  sourceRoot = "deb";
  dontConfigure = true;
  dontBuild = true;
  installPhase = ''
    install -Dm755 bin/busybox $out/bin/busybox
  '';
  meta = {
    description = "Static busybox from Debian";
    license = lib.licenses.gpl2Only;
  };
}
