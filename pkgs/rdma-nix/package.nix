# The generator itself, for nixpkgs users (`nix run github:…#rdma-nix -- generate`).
{ lib, rustPlatform }:

rustPlatform.buildRustPackage {
  pname = "rdma-nix";
  version = "0.1.0";

  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../Cargo.toml
      ../../Cargo.lock
      ../../src
      ../../tests
      ../../stack.toml
      # src/emit/kernel_modules.rs compiles the recorded kABI imports in.
      ../../pkgs/kabi
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # The integration tests need the nix binary, Debian packages and QEMU; the unit
  # tests run here.
  cargoTestFlags = [ "--lib" ];

  meta = {
    description = "Generate Nix for the RDMA stack from upstream sources";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "rdma-nix";
  };
}
