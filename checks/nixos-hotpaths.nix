# One hot-path NixOS test (nixpkgs' test framework): two nodes set up by
# modules/rdma.nix alone, with `kernelPackages`, a soft device of `driver` (rxe or
# siw) on the test network's eth1, and `rdma` (more hardware.rdma settings), running
# the payload the offline checks run (checks/payload): the server side on `server`,
# the client side on `client`. `ours`: the loaded module must be rdma-nix's (under
# updates/), else the kernel's own. `extraScript` runs on the client after the
# payload (Python, as testScript). The client's result (JSON, as `rdma-nix matrix`
# reads it) is copied into the test's output. Used by checks/nixos.nix (the flake's
# checks) and by hardware.rdma.checks.gate (the system's own configuration).
{
  lib,
  testers,
  rdmaModule,
}:

let
  rdmaNixLib = import ../modules/lib.nix { inherit lib; };
  payload = ./payload;
in
{
  name,
  kernelName,
  kernelPackages,
  driver,
  ours ? false,
  providers ? [ driver ],
  rdma ? { },
  extraScript ? "",
}:
let
  option = if driver == "rxe" then "softRoce" else "siw";
  # The kernel module the driver loads, and where the loaded one must come from.
  kmod = rdmaNixLib.softDrivers.${driver}.module;
  modules = if ours then "rdma-nix" else "kernel";
  whence = if ours then "succeed" else "fail";
  # The device the module creates on the test network's interface.
  dev = lib.head (rdmaNixLib.softDevices driver [ "eth1" ]);
  # rdma-core's suite runs (checks/payload/rdma-suite.py), as a Python list.
  suiteRuns =
    "[(\"suite\", \"\")"
    + lib.optionalString (driver == "siw") ", (\"cm\", \"--gid 0 -k test_rdmacm\")"
    + lib.optionalString (driver == "rxe") ", (\"ext-qp-late-recv\", \"-k test_rdmacm_async_traffic_external_qp\")"
    + "]";
  node =
    { config, pkgs, ... }:
    {
      imports = [
        rdmaModule
        { hardware.rdma = rdma; }
      ];
      boot.kernelPackages = kernelPackages;
      hardware.rdma = {
        enable = true;
        inherit providers;
        perftest.enable = true;
        ${option}.interfaces = [ "eth1" ];
      };
      # RoCEv2 (UDP 4791) through the module; the payload's TCP ports (its tests'
      # exchange ports, and the RDMA CM ports siw connects on) here.
      hardware.rdma.openFirewall = true;
      # Python and pyverbs for rdma-core's suite beside the payload.
      virtualisation.memorySize = 2048;
      networking.firewall.allowedTCPPortRanges = [
        {
          from = 18515;
          to = 18522;
        }
      ];
      # rdma-core's own suite with the pyverbs of the node's release, run by the
      # offline checks' runner against the same expectations.
      environment.systemPackages = [
        pkgs.iproute2
        (
          let
            releases = import ../pkgs/generated/rdma-core;
            pyverbs =
              (pkgs.callPackage ../pkgs/rdma-packages.nix {
                release = releases.releases.${config.hardware.rdma.release};
              }).rdma-core-pyverbs;
          in
          pkgs.writeShellScriptBin "rdma-nix-suite" ''
            PYTHONPATH=${pyverbs}/${pyverbs.sitePackages} exec ${pyverbs.python.interpreter} \
              ${payload}/rdma-suite.py ${pyverbs}/${pyverbs.suiteDir} ${payload}/suite-expected.toml "$@"
          ''
        )
      ];
      # The negative case: this driver's provider from another rdma-core release,
      # in a config dir of its own.
      environment.etc."rdma-nix-negative/libibverbs.d/${driver}.driver".text =
        let
          releases = import ../pkgs/generated/rdma-core;
          core = config.hardware.rdma.package;
          other = lib.head (lib.filter (v: releases.releases.${v}.pabi != core.pabi) (builtins.attrNames releases.releases));
          foreign = pkgs.callPackage ../pkgs/rdma-core/provider.nix {
            rdma-core = pkgs.callPackage ../pkgs/rdma-core/package.nix { release = releases.releases.${other}; };
            name = driver;
            data = releases.releases.${other}.providers.${driver};
          };
        in
        rdmaNixLib.driverLine driver foreign;
    };
in
testers.runNixOSTest {
  inherit name;
  nodes = {
    server = node;
    client = node;
  };
  globalTimeout = 1800;
  testScript = ''
    import json

    start_all()
    for m in (server, client):
        m.wait_for_unit("rdma-link-${dev.name}.service")
        m.succeed("ibv_devices | grep -q ${dev.name}")
        # rdma-nix's module sits under updates/, which depmod searches first.
        m.${whence}("modinfo -F filename ${kmod} | grep -q /updates/")

    # One test at a time: its server on `server`, its client on `client` once the
    # server listens (the payload's `ready`), never retried.
    hp = "sh ${payload}/rdma-hotpaths.sh"
    for m in (server, client):
        m.succeed(f"{hp} settle ${dev.name}")
    client.succeed(f"{hp} devinfo ${dev.name}")
    for t in client.succeed(f"{hp} tests").split():
        server.succeed(f"{hp} server ${driver} ${dev.name} {t} >/dev/null 2>&1 &")
        ready, why = server.execute(f"{hp} ready {t} 60 2>&1")
        if ready == 0:
            rc_t, _ = client.execute(f"{hp} client ${driver} ${dev.name} server {t}")
        else:
            # The server ended or never listened: the client can't run (recorded).
            rc_t = -1
            client.succeed(f"mkdir -p /tmp/rdma-hotpaths && echo '-1 0' > /tmp/rdma-hotpaths/client-{t}.rc")
            client.succeed(f"cat > /tmp/rdma-hotpaths/client-{t}.log <<'EOF'\n{why}\nEOF")
        server.execute(f"{hp} stop {t}" + ("" if rc_t == 0 else " now"))
        srv = server.succeed(f"cat /tmp/rdma-hotpaths/server-{t}.rc").strip()
        client.succeed(f"echo {srv} > /tmp/rdma-hotpaths/server-{t}.rc")
    rc, out = client.execute(f"{hp} result ${driver} ${dev.name} server /tmp/result.json")
    print(out)
    client.succeed("sh ${payload}/rdma-hotpaths.sh negative ${dev.name} /etc/rdma-nix-negative/libibverbs.d")

    # rdma-core's own suite on the device (siw: also its RDMA CM subset), checked
    # against checks/payload/suite-expected.toml; every outcome into result.json.
    suite = []
    for run, args in ${suiteRuns}:
        rc_s, out_s = client.execute(f"rdma-nix-suite {run} /tmp/suite-{run}.json -- --dev ${dev.name} {args} 2>&1")
        print(out_s)
        suite.append(json.loads(client.succeed(f"cat /tmp/suite-{run}.json")))

    ${extraScript}

    # The unit removes the device on stop and adds it again, idempotently.
    client.succeed("systemctl stop rdma-link-${dev.name}.service")
    client.fail("rdma dev show ${dev.name}")
    client.succeed("systemctl start rdma-link-${dev.name}.service")
    client.succeed("systemctl restart rdma-link-${dev.name}.service")
    client.succeed("rdma dev show ${dev.name}")

    result = json.loads(client.succeed("cat /tmp/result.json"))
    suite_ok = all(r["status"] == "pass" for r in suite)
    result.update(kernel=client.succeed("uname -r").strip(), kernel_name="${kernelName}", modules="${modules}", negative_pabi="pass", suite=suite, status="pass" if rc == 0 and suite_ok else "fail")
    client.succeed("mkdir -p /tmp/out && cat > /tmp/out/result.json <<'EOF'\n" + json.dumps(result) + "\nEOF")
    # copy_from_machine in current nixpkgs; copy_from_vm before it was renamed.
    copy = getattr(client, "copy_from_machine", None) or getattr(client, "copy_from_vm")
    copy("/tmp/out/result.json")
    assert rc == 0, f"payload failed on ${kernelName} ${driver}: {out}"
    assert suite_ok, "rdma-core's suite on ${kernelName} ${driver}: " + "; ".join(p for r in suite for p in r["problems"])
  '';
}
