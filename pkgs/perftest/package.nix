# perftest: the RDMA micro-benchmarks (ib_send_bw, ib_write_bw, ib_read_lat, …),
# built against our rdma-core. Not in nixpkgs (requested since 2023).
{
  lib,
  stdenv,
  fetchzip,
  pkg-config,
  pciutils,
  rdma-core,
}:

let
  # The lock's perftest pin (stack.lock's `perftest-orig`, which `rdma-nix update`
  # moves to the newest release of the tracked suites): the tree of upstream's release
  # tarball, with its generated configure, pinned by NAR hash; Debian's copy serves it.
  pin = import ../generated/perftest.nix;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "perftest";
  inherit (pin) version;

  src = fetchzip {
    name = "source";
    inherit (pin) urls hash;
  };

  # A failed CPU-frequency calibration made every figure 0.00 with exit status 0;
  patches = [
    ./cpu-mhz-no-zero.patch
    # The server listens before the handshake that lets the client connect (-R).
    ./rdma-cm-listen-before-handshake.patch
  ];

  nativeBuildInputs = [ pkg-config ];
  buildInputs = [
    pciutils
    rdma-core
    rdma-core.dev
  ];

  passthru = {
    inherit rdma-core;
    benchmarks = [
      "ib_send_bw"
      "ib_send_lat"
      "ib_write_bw"
      "ib_write_lat"
      "ib_read_bw"
      "ib_read_lat"
      "ib_atomic_bw"
      "ib_atomic_lat"
    ];
  };

  installCheckPhase = ''
    for b in ${lib.concatStringsSep " " finalAttrs.passthru.benchmarks}; do
      test -x $out/bin/$b
    done
  '';
  doInstallCheck = true;

  meta = {
    description = "RDMA performance tests (bandwidth and latency) for verbs devices";
    homepage = "https://github.com/linux-rdma/perftest";
    license = with lib.licenses; [ gpl2Only bsd2 ];
    platforms = lib.platforms.linux;
    mainProgram = "ib_send_bw";
  };
})
