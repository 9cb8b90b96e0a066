# Checks of the offline platform itself.
{ callPackage, stdenv, runVM, kernels, roles, fetchurl, debianInputs }:

let
  # A kernel whose restored drivers are built for it (pkgs/generated/roles.nix).
  kernel = kernels.${roles.kabiBase};
in
{
  hello-cmake = callPackage ./hello-cmake/package.nix { };

  # Nix's passAsFile: the `<name>Path` file is readable inside the build root, with the
  # sandbox on (build directory /build) or off (/tmp/nix-build-…, bound at /build).
  pass-as-file = stdenv.mkDerivation {
    name = "pass-as-file";
    text = "passed as a file";
    passAsFile = [ "text" ];
    buildCommand = ''
      case $textPath in /build/*) ;; *) echo "textPath $textPath is not below /build" >&2; exit 1 ;; esac
      cp "$textPath" $out
    '';
  };

  # The kernel's dev tree is usable: build a trivial module against it, for every
  # kernel of the offline matrix.
  kernel-dev = callPackage ./hello-module { inherit kernel; inherit (kernel) stdenv; };
  # (A list: nix-build skips attribute names with dots, as kernel names have.)
  kernel-dev-all = map (k: callPackage ./hello-module { kernel = k; inherit (k) stdenv; }) (builtins.attrValues kernels);

  # Boots the kernel; the result shows `uname -r` from inside the VM.
  vm-smoke = runVM {
    name = "smoke";
    inherit kernel;
    timeout = 240;
    modules = [ "virtio_net" ];
    testScript = ''
      set -e
      uname -r
      grep -q virtio_net /proc/modules
      printf '{"uname":"%s"}' "$(uname -r)" > /tmp/result.json
    '';
  };

  # A kernel that never reaches the test script (no init; panic=0 waits forever)
  # ends at the timeout; expectFailure keeps its serial log and result.json.
  vm-hang = runVM {
    name = "hang";
    inherit kernel;
    timeout = 30;
    kernelParams = [ "rdinit=/does-not-exist" "panic=0" ];
    testScript = "true";
    expectFailure = true;
  };

  # A pin with the wrong hash: building it fails with both hashes. (The file comes
  # from the store, the pinned .deb itself, so nothing is downloaded.)
  wrong-hash = fetchurl {
    url = "file://${fetchurl { inherit (debianInputs.busybox-static) url hash name; }}";
    inherit (debianInputs.busybox-static) name;
    hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  };
}
