# perftest: the RDMA micro-benchmarks (ib_send_bw, ib_write_bw, ib_read_lat, …),
# built against our rdma-core. Not in nixpkgs (requested since 2023).
{
  lib,
  stdenv,
  fetchurl,
  pkg-config,
  pciutils,
  rdma-core,
}:

stdenv.mkDerivation (finalAttrs: {
  pname = "perftest";
  version = "25.01.0+0.80";

  # Debian's copy of the upstream release tarball (linux-rdma/perftest 25.01.0-0.80).
  src = fetchurl {
    name = "perftest_25.01.0+0.80.orig.tar.gz";
    url = "mirror://debian/pool/main/p/perftest/perftest_25.01.0+0.80.orig.tar.gz";
    hash = "sha256-VOhrEx8LBoYri5zWknOXNylUY8/vRnvdpfWqPa6MWwU=";
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
