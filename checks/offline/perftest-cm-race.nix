# A minimal, deterministic reproducer of perftest's RDMA CM race (-R), found by the
# hot-path checks (ib_read_lat "Unexpected CM event ... 8", then SIGSEGV): perftest
# connects twice, first a communication connection, then, after a handshake over it,
# the test QP; the server made that second listener only after the handshake, so a
# client's request could come first and be rejected (no listener on the port). Here a
# shim (delay-rdma-listen.c) makes the server's second rdma_listen() a second late:
# with `race = true` (perftest without pkgs/perftest/rdma-cm-listen-before-handshake.patch)
# the client must be rejected (and, unpatched, perftest's retry then crashes), every
# time; with the patch, the test must pass.
{
  lib,
  runVM,
  runCommand,
  softDevice,
  rdmaNixLib,
  roles,
  perftest,
}:

{
  kernelName ? roles.kabiBase,
  driver ? "rxe",
  race ? false,
}:
let
  sd = softDevice { inherit kernelName driver; };
  inherit (sd) kernel provider dev;
  bench =
    if race then
      perftest.overrideAttrs (o: {
        patches = lib.filter (p: baseNameOf p != "rdma-cm-listen-before-handshake.patch") o.patches;
      })
    else
      perftest;
  shim = runCommand "delay-rdma-listen" { } ''
    mkdir -p $out/lib
    gcc -shared -fPIC -O2 -o $out/lib/delay-rdma-listen.so ${./delay-rdma-listen.c} -ldl
  '';
  cmd = "${bench}/bin/ib_read_lat -d ${dev.name} -R -F -p 18522 -n 100 -s 64";
in
runVM (sd.vmModules // {
  name = "perftest-cm-race-${if race then "unpatched" else "patched"}-${driver}-${kernelName}";
  inherit kernel;
  timeout = 300;
  binaries = [
    "/usr/bin/rdma"
    "${bench}/bin/ib_read_lat"
    "${shim}/lib/delay-rdma-listen.so"
  ];
  files =
    sd.configFiles
    // {
      ${builtins.unsafeDiscardStringContext (rdmaNixLib.pluginPath provider)} = rdmaNixLib.pluginPath provider;
      "payload/rdma-hotpaths.sh" = "${../payload}/rdma-hotpaths.sh";
      "payload/expected.txt" = "${../payload}/expected.txt";
    };
  resultAttrs = {
    kernel_name = kernelName;
    inherit driver race;
  };
  testScript = ''
    export PATH=/bin:/sbin:/usr/bin
    ${sd.upScript}
    sh /payload/rdma-hotpaths.sh settle ${dev.name} || exit 1
    LD_PRELOAD=${shim}/lib/delay-rdma-listen.so ${cmd} > /tmp/server.log 2>&1 &
    server=$!
    sh /payload/rdma-hotpaths.sh ready ib_read_lat || exit 1
    timeout 60 ${cmd} 10.0.2.15 > /tmp/client.log 2>&1
    client=$?
    if [ "$client" = 0 ]; then wait $server; srv=$?; else kill $server; srv=killed; fi
    echo "== client (exit $client)"; cat /tmp/client.log
    echo "== server (exit $srv)"; cat /tmp/server.log
    ${if race then ''
      # The race, reproduced: the client's request was rejected (RoCE: a REJ from the
      # CM, "invalid service ID"; iWARP: the TCP connection refused).
      [ "$client" != 0 ] && grep -qE 'RDMA_CM_EVENT_REJECTED|Connection refused' /tmp/client.log
    '' else ''
      [ "$client" = 0 ] && [ "$srv" = 0 ] && grep -q '#bytes' /tmp/client.log
    ''}
  '';
})
