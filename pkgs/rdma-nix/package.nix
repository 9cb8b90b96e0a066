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
      # The unit tests read the repository's intent and lock.
      ../../stack.toml
      ../../stack.lock
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
