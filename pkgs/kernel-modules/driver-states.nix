# Which RDMA drivers of its source a kernel builds itself, and whether each other one
# can be restored there, read from the kernel's own .config (`kernel.configfile`), as
# `rdma-nix kernel inspect` and `kernel restore-plan` read a Debian kernel's. `drivers`
# is the plan of the kernel's series (pkgs/generated/restore.nix
# `series.<s>.drivers`: each driver's recipe from the source alone, with `kconfig`,
# the symbols its modules are built on, and `requires`, what the symbols it sets ask
# of the config).
#  - state: `y` if one of its modules' symbols is y, else `m` if one is m, else `unset`;
#  - verdict: `in-tree` when the kernel builds all its modules, `refused` (with the
#    reason, in the planner's words) when it builds some of them, when a driver it
#    needs is in the kernel or refused, when a `depends on` isn't met or a selected
#    symbol is unset; else `restorable`. Dependencies are evaluated as Kconfig does
#    (tristate and, or, not, `=`, `!=`), the recipe's symbols and its needs' taken as m.
# tests/it/kernel_modules.rs holds these verdicts to the Rust planner's on every matrix
# kernel. For nixpkgs' kernels (autoModules) the `restorable` drivers are those the
# kernel lacks; pkgs/kernel-modules/restored.nix refuses to build any other.
# Writes rdma-drivers.json: { kernel, drivers.<name> = { state, symbols, verdict,
# reason } }, and `verdicts`: `<driver>\t<verdict>\t<reason>` lines.
{
  lib,
  runCommand,
  python3,
  kernel,
  drivers,
}:

let
  plan = lib.mapAttrs (
    name: d:
    if d ? kconfig then
      d
    else
      throw "rdma-driver-states: ${name} has no `kconfig` (not a series plan of pkgs/generated/restore.nix)"
  ) drivers;
in
runCommand "rdma-driver-states-${kernel.modDirVersion}"
  {
    nativeBuildInputs = [ python3 ];
    config = kernel.configfile;
    kernelVersion = kernel.modDirVersion;
    plan = builtins.toJSON plan;
    passAsFile = [ "plan" ];
    meta.description = "The RDMA drivers linux ${kernel.modDirVersion} builds itself or can restore, from its .config";
  }
  ''
    mkdir -p $out
    python3 ${./driver-states.py} "$config" "$planPath" "$kernelVersion" $out
    test -s $out/rdma-drivers.json
  ''
