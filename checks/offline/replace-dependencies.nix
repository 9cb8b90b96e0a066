# Every consumer of another rdma-core reaches our providers, without a rebuild: a
# program linked against a foreign rdma-core store path (here rdma-core-full, whose
# libibverbs reads the config dir inside its own store path, as nixpkgs' rdma-core
# does) is rewritten the way system.replaceDependencies rewrites a NixOS system
# (replaceDirectDependencies: same-length store path names swapped in a NAR) to use a
# runtime view of our split core and the composed providers. In the VM, with a soft
# device, the original loads the foreign core's provider and the rewritten copy ours
# (glibc's LD_DEBUG=files names every library it loads).
{
  lib,
  runVM,
  runCommand,
  stdenv,
  softDevice,
  rdmaNixLib,
  roles,
  rdma-core,
  rdma-core-full,
  replaceDirectDependencies,
}:

{
  kernelName ? roles.kabiBase,
  driver ? "rxe",
}:
let
  sd = softDevice { inherit kernelName driver; };
  inherit (sd) kernel provider dev;

  # The foreign rdma-core's consumer, as ucx or openmpi would link it.
  consumer = stdenv.mkDerivation {
    name = "verbs-consumer";
    dontUnpack = true;
    buildInputs = [ rdma-core-full ];
    # $LDFLAGS: the offline stdenv's run paths to the inputs (nixpkgs' cc wrapper adds them).
    buildPhase = "cc -O2 -o verbs-consumer ${./verbs-consumer.c} $LDFLAGS -libverbs";
    installPhase = "install -D verbs-consumer $out/bin/verbs-consumer";
  };

  # Our core and the composed providers, under the foreign core's name.
  view = rdmaNixLib.mkRuntimeView {
    inherit runCommand;
    core = rdma-core;
    providers = [ provider ];
    configDir = rdmaNixLib.mkVerbsConfigDir {
      inherit runCommand;
      core = rdma-core;
      providers = [ provider ];
    };
    name = rdma-core-full.name;
  };

  replaced = replaceDirectDependencies {
    drv = consumer;
    replacements = [
      {
        oldDependency = rdma-core-full;
        newDependency = view;
      }
    ];
  };

  # The foreign core's own config dir and plugin for this driver.
  foreignDriver = "${rdma-core-full}/etc/libibverbs.d/${provider.providerName}.driver";
  foreignPlugin = "${rdma-core-full}/lib/libibverbs/lib${provider.providerName}-rdmav${toString rdma-core-full.pabi}.so";
  storeFile = p: { ${builtins.unsafeDiscardStringContext (lib.removePrefix "/" p)} = p; };
in
runVM (sd.vmModules // {
  name = "replace-dependencies-${driver}-${kernelName}";
  inherit kernel;
  timeout = 300;
  binaries = [
    "/usr/bin/rdma"
    "${consumer}/bin/verbs-consumer"
    "${replaced}/bin/verbs-consumer"
  ];
  files =
    sd.configFiles
    // storeFile (rdmaNixLib.pluginPath provider)
    // storeFile foreignDriver
    // storeFile foreignPlugin
    // {
      "payload/rdma-hotpaths.sh" = "${../payload}/rdma-hotpaths.sh";
    };
  resultAttrs = {
    kernel_name = kernelName;
    inherit driver;
    consumer = "${consumer}";
    replaced = "${replaced}";
    view = "${view}";
    foreign_core = "${rdma-core-full}";
    foreign_plugin = foreignPlugin;
    our_plugin = rdmaNixLib.pluginPath provider;
  };
  passthru = { inherit consumer replaced view; };
  testScript = ''
    export PATH=/bin:/sbin:/usr/bin
    ${sd.upScript}
    sh /payload/rdma-hotpaths.sh settle ${dev.name} || exit 1
    # The plugin each copy loads: glibc names every file it opens.
    plugin() { LD_DEBUG=files "$1" 2>&1 >/tmp/out.txt | sed -n 's|.*file=\(/nix/store/[^ ]*/lib/libibverbs/[^ ]*\.so\) .*|\1|p' | head -n 1; }
    original=$(plugin ${consumer}/bin/verbs-consumer); original_out=$(cat /tmp/out.txt)
    rewritten=$(plugin ${replaced}/bin/verbs-consumer); rewritten_out=$(cat /tmp/out.txt)
    echo "original loads $original: $original_out"
    echo "rewritten loads $rewritten: $rewritten_out"
    printf '{"original_plugin":"%s","original_output":"%s","rewritten_plugin":"%s","rewritten_output":"%s"}' \
      "$original" "$original_out" "$rewritten" "$rewritten_out" > /tmp/result.json
    [ "$original" = ${foreignPlugin} ] && [ "$rewritten" = ${rdmaNixLib.pluginPath provider} ] \
      && [ "$original_out" = "opened ${dev.name}" ] && [ "$rewritten_out" = "opened ${dev.name}" ]
  '';
})
