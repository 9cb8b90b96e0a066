# The soft-RDMA hot paths on one kernel of the offline matrix and one device (rxe or
# siw), under software emulation: the shared payload (checks/payload) on one node,
# client and server over the device's loopback. Kernel modules, soft dependencies,
# the config dir and the `rdma link` script come from modules/lib.nix, as the NixOS
# module computes them. Then rdma-core's own suite on the device (siw also its RDMA CM
# subset) against checks/payload/suite-expected.toml, NVMe over Fabrics over the
# device, and RNBD over RTRS over the device (restored where the kernel lacks them:
# pkgs/generated/restore.nix). result.json: status, kernel, device, each test's
# pass/fail/unsupported with perftest's figures, the negative PABI case, durations,
# every suite test's outcome, NVMe-oF's and RNBD's verification and figures.
{
  lib,
  runVM,
  writeText,
  softDevice,
  rdmaNixLib,
  kernelPackages,
  rdma-core,
  perftest,
  rdmaPackages,
  rdma-core-pyverbs,
  python3,
}:

{
  kernelName,
  driver,
  # What each test should give (checks/payload/expected.txt); a test may pass another.
  expected ? ../payload/expected.txt,
  # What rdma-core's own suite should give per kernel series × device
  # (checks/payload/suite-expected.toml; checks/payload/rdma-suite.py reads it).
  suiteExpected ? ../payload/suite-expected.toml,
  # Run rdma-core's suite (and siw's CM subset) after the hot paths, and the NVMe over
  # Fabrics path (both on in every check of the matrix).
  withSuite ? true,
  withNvmeof ? true,
  # RNBD over RTRS over the device (on in every check of the matrix).
  withRnbd ? true,
  # More test files for the suite, name → file (test_*.py), added beside upstream's
  # (tests/it/vm_checks.rs adds one that fails on purpose; a file of upstream's own name
  # replaces it).
  suiteExtraTests ? { },
  # The suite's runs, in order, each { name; args; } (run_tests.py arguments); null:
  # the whole suite, then siw's RDMA CM subset or rxe's late-receive probe.
  suiteRuns ? null,
  # The payload directory (another one to compare harnesses).
  payload ? ../payload,
  # A repetition number, recorded in result.json: distinct derivations of the same
  # check, for measuring how often it fails (scripts/repeat-checks).
  repeat ? null,
  # Keep the result, pass or fail, instead of failing the build.
  recordOnly ? false,
  # More files in the VM, path in the VM → source (diagnostics).
  extraFiles ? { },
}:
let
  sd = softDevice { inherit kernelName driver; };
  inherit (sd) kernel provider dev;
  kp = kernelPackages.${kernelName};
  # RNBD's modules: the kernel's own, or ours where its config leaves them out.
  rnbdModules = [ "rtrs_core" "rtrs_server" "rtrs_client" "rnbd_server" "rnbd_client" ];
  rnbdRestored = lib.filterAttrs (d: _: builtins.elem d [ "rtrs" "rnbd" ]) kp.rdmaRestored;
  rnbdFiles = rdmaNixLib.moduleFilesOf kernel (builtins.attrValues rnbdRestored);
  storage = withNvmeof || withRnbd;

  # The negative case: the same provider from another rdma-core release (another
  # PABI), in a config dir written by hand (mkVerbsConfigDir refuses to).
  otherRelease = lib.head (lib.filter (v: rdmaPackages.${v}.rdma-core.pabi != rdma-core.pabi) (builtins.attrNames rdmaPackages));
  foreign = rdmaPackages.${otherRelease}.rdmaProviders.${driver};
  # Attribute names can't carry a dependency: the same path inside the VM.
  samePath = p: lib.nameValuePair (builtins.unsafeDiscardStringContext p) p;

  tools = [ "/usr/bin/rdma" ]
    ++ map (t: "${rdma-core}/bin/${t}") [ "ibv_devinfo" "ibv_devices" "ibv_rc_pingpong" "ibv_uc_pingpong" "ibv_ud_pingpong" "ibv_srq_pingpong" "rping" ]
    ++ map (t: "${perftest}/bin/${t}") [ "ib_send_bw" "ib_write_bw" "ib_read_lat" ]
    # Python for the suite's runner and reports, and iproute2's ip (JSON output;
    # busybox's has none).
    ++ lib.optionals (withSuite || storage) [ "/usr/bin/python3" "/usr/bin/ip" ]
    # NVMe over Fabrics and RNBD: Debian's nvme-cli and fio.
    ++ lib.optionals withNvmeof [ "/usr/sbin/nvme" ]
    ++ lib.optionals storage [ "/usr/bin/fio" ];
  pyverbs = rdma-core-pyverbs;
  suiteDir = if suiteExtraTests == { } then "${pyverbs}/${pyverbs.suiteDir}" else "/tmp/rdma-tests";
  runs =
    if suiteRuns != null then
      suiteRuns
    else
      [ { name = "suite"; args = ""; } ]
      ++ lib.optionals (driver == "siw") [ { name = "cm"; args = "--gid 0 -k test_rdmacm"; } ]
      ++ lib.optionals (driver == "rxe") [
        { name = "ext-qp-late-recv"; args = "-k test_rdmacm_async_traffic_external_qp"; }
      ];
  suite = run: args: ''
    PATH=/usr/sbin:/usr/bin:$PATH PYTHONPATH=${pyverbs}/${pyverbs.sitePackages} \
      python3 /payload/rdma-suite.py ${suiteDir} /payload/suite-expected.toml \
      ${run} /tmp/suite-${run}.json -- --dev ${dev.name} ${args} || suite=fail
  '';
in
runVM (sd.vmModules // {
  # NVMe over Fabrics (target, host), RNBD's modules the kernel has, and the ramdisk
  # both export.
  modules = sd.vmModules.modules
    ++ lib.optionals withNvmeof [ "nvmet" "nvmet_rdma" "nvme_rdma" ]
    ++ lib.optionals withRnbd (builtins.filter (m: !(rnbdFiles ? ${builtins.replaceStrings [ "_" ] [ "-" ] m})) rnbdModules)
    ++ lib.optionals storage [ "brd" ];
  extraModules = sd.vmModules.extraModules // lib.optionalAttrs withRnbd rnbdFiles;
  name = "hotpaths-${driver}-${kernelName}";
  inherit kernel;
  timeout = if withSuite then 900 else 600;
  # The suite's Python, and RNBD's RTRS buffers on both ends (5.10's fio was killed
  # for memory in 1 GiB), want more than the hot paths' 1 GiB.
  memory = if withSuite || withRnbd then 2048 else 1024;
  inherit recordOnly;
  binaries = tools;
  files =
    sd.configFiles
    // lib.listToAttrs [
      (samePath (rdmaNixLib.pluginPath provider))
      (samePath (rdmaNixLib.pluginPath foreign))
    ]
    // {
      "negative/libibverbs.d/${driver}.driver" = "${writeText "negative-${driver}.driver" (rdmaNixLib.driverLine driver foreign)}";
      "payload/rdma-hotpaths.sh" = "${payload}/rdma-hotpaths.sh";
      "payload/expected.txt" = "${expected}";
    }
    // lib.optionalAttrs withSuite {
      "payload/rdma-suite.py" = "${payload}/rdma-suite.py";
      "payload/suite-expected.toml" = "${suiteExpected}";
    }
    // lib.mapAttrs' (n: f: lib.nameValuePair "payload/suite-extra/${n}" "${f}") suiteExtraTests
    // lib.optionalAttrs storage {
      "payload/fio-verify.sh" = "${payload}/fio-verify.sh";
    }
    // lib.optionalAttrs withNvmeof {
      "payload/rdma-nvmeof.sh" = "${payload}/rdma-nvmeof.sh";
    }
    // lib.optionalAttrs withRnbd {
      "payload/rdma-rnbd.sh" = "${payload}/rdma-rnbd.sh";
    }
    // extraFiles;
  # The suite's interpreter and pyverbs (with its own libraries, providers and
  # config dir), whole.
  trees = lib.optionalAttrs (withSuite || storage) {
    "usr/lib/${python3.libPrefix}" = "/usr/lib/${python3.libPrefix}";
  } // lib.optionalAttrs withSuite {
    ${builtins.unsafeDiscardStringContext pyverbs} = pyverbs;
  };
  treeSkip = lib.optionals (withSuite || storage) [ "test" "idlelib" "tkinter" "turtledemo" "ensurepip" "lib2to3" "pydoc_data" "config-${python3.pythonVersion}-x86_64-linux-gnu" ];
  passthru.checkName = "${kernelName}-${driver}";
  resultAttrs = {
    kernel_name = kernelName;
    inherit driver;
    device = dev.name;
    rdma_core = rdma-core.version;
  } // lib.optionalAttrs (repeat != null) { inherit repeat; };
  testScript = ''
    export PATH=/bin:/sbin:/usr/bin:${rdma-core}/bin:${perftest}/bin
    ${sd.upScript}
    # Idempotent: a second run leaves the device alone.
    ${rdmaNixLib.linkUpScript { rdma = "/usr/bin/rdma"; inherit dev; }}
    # The connection manager's tracepoints (ib_cm, rdma_cma): on a failure, the
    # kernel's side of every connection attempt (a reject's reason) goes to the log.
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
    for e in ib_cm rdma_cma; do
      [ -e /sys/kernel/tracing/events/$e/enable ] && echo 1 > /sys/kernel/tracing/events/$e/enable
    done
    sh /payload/rdma-hotpaths.sh local ${driver} ${dev.name} 10.0.2.15 /tmp/hotpaths.json
    rc=$?
    if [ "$rc" != 0 ] && [ -r /sys/kernel/tracing/trace ]; then
      echo "== connection manager trace (last 150 events)"
      grep -v '^#' /sys/kernel/tracing/trace | tail -n 150
    fi
    if [ "$rc" != 0 ]; then
      echo "== addresses, routes and the kernel log (last 60 lines)"
      ip addr; ip -6 route; dmesg | tail -n 60
    fi
    negative=pass
    sh /payload/rdma-hotpaths.sh negative ${dev.name} /negative/libibverbs.d || negative=fail
    suite=pass nvmeof=pass rnbd=pass
  '' + lib.optionalString withSuite ''
    # rdma-core's own suite on the device (and siw's RDMA CM subset, which needs GID 0
    # named: tests/base.py takes siw's GID for zero and skips the rest).
    mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm
    ${lib.optionalString (suiteExtraTests != { }) ''
      cp -r ${pyverbs}/${pyverbs.suiteDir} ${suiteDir} && chmod -R u+w ${suiteDir}
      cp /payload/suite-extra/* ${suiteDir}/
    ''}    ${lib.concatMapStrings (r: suite r.name r.args) runs}
  '' + lib.optionalString withNvmeof ''
    # The kernel's RDMA storage path over the same device.
    PATH=/usr/sbin:/usr/bin:$PATH sh /payload/rdma-nvmeof.sh 10.0.2.15 /tmp/nvmeof.json || nvmeof=fail
  '' + lib.optionalString withRnbd (if driver == "siw" then ''
    # RNBD over siw: unsupported, checked as such. RTRS posts every I/O as an RDMA
    # WRITE with immediate data, which iWARP doesn't have (siw refuses it: -EINVAL),
    # and a path's later connections reuse its first one's source port, the same TCP
    # 4-tuple over iWARP (connect: -EADDRNOTAVAIL). Its server listens on the IPv6
    # wildcard address. The mapping must be refused; a pass is a stale expectation.
    /usr/bin/ip -6 addr add fd00:0:0:2::15/64 dev eth0 nodad || rnbd=fail
    if PATH=/usr/sbin:/usr/bin:$PATH sh /payload/rdma-rnbd.sh fd00:0:0:2::15 /tmp/rnbd.json; then
      echo "rdma-rnbd: RNBD over siw mapped and verified: the expectation (unsupported) is stale"
      rnbd=fail
    else
      python3 -c '
    import json, sys
    r = json.load(open("/tmp/rnbd.json"))
    if not r.get("reason", "").startswith("map_device refused"):
        sys.exit("rdma-rnbd: over siw, expected the mapping to be refused, got: %s" % r.get("reason"))
    json.dump({"status": "unsupported", "reason": "RTRS over iWARP: " + r["reason"]}, open("/tmp/rnbd.json", "w"))
    ' || rnbd=fail
    fi
  '' else ''
    # The block ULP over RTRS over the same device.
    PATH=/usr/sbin:/usr/bin:$PATH sh /payload/rdma-rnbd.sh 10.0.2.15 /tmp/rnbd.json || rnbd=fail
  '') + ''
    ${rdmaNixLib.linkDownScript { rdma = "/usr/bin/rdma"; inherit dev; }}
    removed=pass
    rdma dev show ${dev.name} >/dev/null 2>&1 && removed=fail
  '' + (if !(withSuite || storage) then ''
    sed -e "s/}\$/,\"negative_pabi\":\"$negative\",\"negative_pabi_release\":\"${otherRelease}\",\"link_removed\":\"$removed\"}/" /tmp/hotpaths.json > /tmp/result.json
  '' else ''
    python3 -c '
    import json, os, sys
    r = json.load(open("/tmp/hotpaths.json"))
    r.update(negative_pabi=sys.argv[1], negative_pabi_release=sys.argv[2], link_removed=sys.argv[3], suite_status=sys.argv[4])
    r["suite"] = [json.load(open(f"/tmp/suite-{n}.json")) for n in (${lib.concatMapStrings (r: "\"${r.name}\", ") runs}) if os.path.exists(f"/tmp/suite-{n}.json")]
    for n in ("nvmeof", "rnbd"):
        if os.path.exists(f"/tmp/{n}.json"):
            r[n] = json.load(open(f"/tmp/{n}.json"))
    json.dump(r, open("/tmp/result.json", "w"))
    ' "$negative" ${otherRelease} "$removed" "$suite"
  '') + ''
    [ "$rc" = 0 ] && [ "$negative" = pass ] && [ "$removed" = pass ] && [ "$suite" = pass ] && [ "$nvmeof" = pass ] && [ "$rnbd" = pass ]
  '';
})
