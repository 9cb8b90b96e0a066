# An out-of-tree module built against a kernel's dev tree, nixpkgs-style.
{ lib, stdenv, kernel, kmod }:

stdenv.mkDerivation {
  pname = "hello-module";
  version = kernel.modDirVersion;
  src = ./.;
  nativeBuildInputs = [ kmod ] ++ kernel.moduleBuildDependencies;
  dontConfigure = true;
  makeFlags = kernel.commonMakeFlags ++ [
    "-C" "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build"
  ];
  buildPhase = ''
    make $makeFlags M=$PWD modules
  '';
  installPhase = ''
    install -Dm644 hello.ko $out/lib/modules/${kernel.modDirVersion}/extra/hello.ko
    modinfo -F vermagic hello.ko | grep -q '^${kernel.modDirVersion} '
  '';
  meta = {
    description = "Trivial module built against ${kernel.modDirVersion}";
    license = lib.licenses.gpl2Only;
  };
}
