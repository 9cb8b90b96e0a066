# A small C package built with cmake: exercises unpack, configure (cmake + ninja),
# build, install and multiple outputs of the offline stdenv.
{ lib, stdenv, cmake, ninja }:

stdenv.mkDerivation (finalAttrs: {
  pname = "hello-cmake";
  version = "1.0";
  src = ./.;
  outputs = [ "out" "dev" ];
  nativeBuildInputs = [ cmake ninja ];
  doInstallCheck = true;
  installCheckPhase = ''
    test "$($out/bin/hello)" = "hello from the offline platform"
    test -f $dev/include/greet.h
  '';
  passthru.greeting = "hello from the offline platform";
  meta = {
    description = "Test package for the offline stdenv";
    license = lib.licenses.mit;
  };
})
