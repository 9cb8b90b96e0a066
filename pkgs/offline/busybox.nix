# The static busybox of the initramfs images: the bootstrap busybox (taken out of
# Debian's busybox-static by `rdma-nix fetch`), at bin/busybox.
{ lib, runCommand, bootstrapBusybox, debianInputs }:

let
  debVersion = debianInputs.busybox-static.version;
  noEpoch = builtins.match "[0-9]+:(.*)" debVersion;
  version = if noEpoch == null then debVersion else builtins.head noEpoch;
in
runCommand "busybox-static-${version}"
{
  meta = {
    description = "Static busybox from Debian";
    license = lib.licenses.gpl2Only;
  };
} ''
  install -Dm755 ${bootstrapBusybox}/bin/busybox $out/bin/busybox
''
