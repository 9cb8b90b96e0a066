# Plain Nix shared by the package sets, the NixOS module and the offline VM checks:
# choosing providers and composing the verbs config dir (`*.driver` files) for a core.
{ lib }:

rec {
  # The providers a config dir will hold, by driver name, after checking them:
  # - every provider's PABI equals the core's (a provider of another rdma-core
  #   release would be skipped by libibverbs with only a warning);
  # - no two providers claim the same driver name, unless the later one comes from
  #   `overrides` (name -> provider), which replaces the bundled one explicitly.
  resolveProviders =
    {
      core,
      providers,
      overrides ? { },
    }:
    let
      describe = p: "${p.name or p.pname} (PABI ${toString p.pabi})";
      checkPabi =
        role: p:
        if !(p ? pabi) then
          throw "rdma-nix: ${role} ${p.name or "?"} is not an rdma-nix provider (no passthru.pabi)"
        else if p.pabi != core.pabi then
          throw "rdma-nix: ${role} ${describe p} does not match the core ${core.name} (PABI ${toString core.pabi}); libibverbs would refuse to load it. Build the provider from the core's release (${core.version})."
        else
          p;
      claims = lib.concatMap (p: map (d: { inherit d p; }) (checkPabi "provider" p).driverNames) providers;
      byName = builtins.foldl' (
        acc: c:
        if acc ? ${c.d} then
          throw "rdma-nix: providers ${acc.${c.d}.name} and ${c.p.name} both claim the driver name '${c.d}'; keep one, or pass the other in `overrides` to replace it explicitly"
        else
          acc // { ${c.d} = c.p; }
      ) { } claims;
      overridden = builtins.mapAttrs (
        d: p:
        let
          p' = checkPabi "override for ${d}" p;
        in
        if builtins.elem d p'.driverNames then
          p'
        else
          throw "rdma-nix: override '${d}' is ${p'.name}, which provides ${lib.concatStringsSep ", " p'.driverNames}, not ${d}"
      ) overrides;
    in
    byName // overridden;

  # The text of one `.driver` file: the plugin by absolute path prefix (libibverbs
  # appends "-rdmav<PABI>.so").
  driverLine = name: p: "driver ${p}/lib/libibverbs/lib${name}\n";

  # The plugin file itself: what the `.driver` prefix resolves to with the PABI.
  pluginPath = p: "${p}/lib/libibverbs/lib${p.providerName}-rdmav${toString p.pabi}.so";

  # `{ "<name>.driver" = text; }` for a resolved set: what /etc/libibverbs.d holds.
  driverFiles = resolved: lib.mapAttrs' (n: p: lib.nameValuePair "${n}.driver" (driverLine n p)) resolved;

  # Another rdma-core's `out` (nixpkgs' rdma-core: every provider compiled in), as
  # everything referring to it sees it at run time, made of this core and its
  # providers: the core's whole `out` tree and every provider's (public libraries
  # such as libmlx5.so.1 and libefa.so.1 whatever the selection, plugins, modprobe
  # and libexec files), all symlinks, `overrides` replacing providers by driver name;
  # etc/libibverbs.d is the composed config dir (`configDir`), the one libibverbs
  # reads. `name` is the replaced package's name, so that both store paths have the
  # same length: what nixpkgs' replaceDependencies (system.replaceDependencies) needs
  # to rewrite every reference to the other rdma-core into one to this view. A file
  # two of them install fails the build, naming both.
  mkRuntimeView =
    {
      runCommand,
      core,
      providers,
      overrides ? { },
      configDir,
      name,
    }:
    let
      resolved = resolveProviders { inherit core providers overrides; };
    in
    runCommand name
      {
        passthru = {
          inherit core resolved configDir;
          inherit (core) pabi version;
        };
      }
      ''
        mkdir -p $out/etc
        ln -s ${configDir}/etc/libibverbs.d $out/etc/libibverbs.d
        for root in ${core} ${lib.concatStringsSep " " (builtins.attrValues resolved)}; do
          (cd "$root" && find . ! -type d ! -path './etc/libibverbs.d/*' ! -path './nix-support/*') |
            while read -r f; do
              if [ -e "$out/$f" ] || [ -L "$out/$f" ]; then
                echo "mkRuntimeView: $f of $root is already provided by $(readlink "$out/$f")" >&2
                exit 1
              fi
              mkdir -p "$(dirname "$out/$f")"
              ln -s "$root/''${f#./}" "$out/$f"
            done || exit 1
        done
      '';

  # A derivation holding etc/libibverbs.d/ for a core and a list of providers.
  mkVerbsConfigDir =
    {
      runCommand,
      core,
      providers,
      overrides ? { },
      name ? "verbs-config-dir",
    }:
    let
      resolved = resolveProviders { inherit core providers overrides; };
      files = driverFiles resolved;
    in
    runCommand "${name}-${core.version}"
      {
        passthru = {
          inherit core resolved;
          inherit (core) pabi;
          driverNames = builtins.attrNames resolved;
          configDir = "etc/libibverbs.d";
        };
      }
      ''
        mkdir -p $out/etc/libibverbs.d
        ${lib.concatStringsSep "\n" (
          lib.mapAttrsToList (f: text: "printf '%s' ${lib.escapeShellArg text} > $out/etc/libibverbs.d/${f}") files
        )}
      '';
}
