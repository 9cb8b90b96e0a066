# Which RDMA drivers of its source a kernel builds itself, read from its own .config
# (`kernel.configfile`), as `rdma-nix kernel inspect` reads a Debian kernel's: each
# driver's state is `y` if one of its modules' symbols is y, else `m` if one is m,
# else `unset`. For nixpkgs' kernels (built with autoModules) the drivers that are
# `y` or `m` are those nothing needs to restore. `drivers` is the plan of the
# kernel's series (pkgs/generated/restore.nix `series.<s>.drivers`: every driver of
# its source), whose entries carry `kconfig`, the symbols their modules are built on.
# Writes rdma-drivers.json: { kernel, drivers.<name> = { state, symbols } }.
{
  lib,
  runCommand,
  python3,
  kernel,
  drivers,
}:

let
  symbols = lib.mapAttrs (
    name: d:
    d.kconfig or (throw "rdma-driver-states: ${name} has no `kconfig` (not a series plan of pkgs/generated/restore.nix)")
  ) drivers;
in
runCommand "rdma-driver-states-${kernel.modDirVersion}"
  {
    nativeBuildInputs = [ python3 ];
    config = kernel.configfile;
    kernelVersion = kernel.modDirVersion;
    symbols = builtins.toJSON symbols;
    passAsFile = [ "symbols" ];
    meta.description = "The RDMA drivers linux ${kernel.modDirVersion} builds itself, from its .config";
  }
  ''
    mkdir -p $out
    python3 - "$config" "$symbolsPath" "$kernelVersion" > $out/rdma-drivers.json <<'EOF'
    import json, sys
    config, symbols_path, version = sys.argv[1:]
    values = {}
    for line in open(config):
        key, eq, value = line.strip().partition("=")
        if eq and key.startswith("CONFIG_"):
            values[key] = value
    drivers = {}
    for name, symbols in sorted(json.load(open(symbols_path)).items()):
        states = {s: values.get(s, "unset") for s in symbols}
        state = next((v for v in ("y", "m") if v in states.values()), "unset")
        drivers[name] = {"state": state, "symbols": states}
    json.dump({"kernel": version, "drivers": drivers}, sys.stdout, indent=1, sort_keys=True)
    EOF
    test -s $out/rdma-drivers.json
  ''
