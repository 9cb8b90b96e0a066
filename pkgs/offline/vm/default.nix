# The offline VM runner: boots a kernel with a generated initramfs under QEMU
# (software emulation by default; KVM only when asked, since nested KVM hangs on
# many build hosts), bounded by a timeout. $out holds serial.log and result.json.
# A guest that fails, panics or never reports within the timeout fails the build,
# with the serial log's tail in the build log (`nix log`); with expectFailure = true
# the build succeeds instead and keeps serial.log and result.json for inspection.
# vmCpus: the guests' vCPUs (-smp; TCG gives each its own host thread).
{ lib, stdenv, busybox, vmCpus ? 1 }:

{
  name,
  kernel,
  testScript,
  modules ? [ ],
  extraModules ? { },
  softDeps ? { },
  binaries ? [ ],
  files ? { },
  # Directories copied whole, path in the VM → source (ELF files with their libraries),
  # leaving out directories named in treeSkip.
  trees ? { },
  treeSkip ? [ ],
  timeout ? 300,
  memory ? 1024,
  accel ? "tcg",
  kernelParams ? [ ],
  expectFailure ? false,
  # Keep the result whatever it is (for measuring how often a check fails).
  recordOnly ? false,
  # Merged into result.json (what the check was: kernel name, device, …).
  resultAttrs ? { },
  passthru ? { },
}:

let
  # The initramfs is two cpio archives, which the kernel unpacks one after the other,
  # uncompressed (a guest under software emulation took 4 s of its boot to gunzip
  # 161 MB). The userspace one (binaries and trees with their libraries: Python and
  # pyverbs are most of the bytes) depends on nothing of the check, so every check
  # carrying the same programs shares one build of it; the boot one (busybox, /init,
  # the kernel's modules, files, the test script) is the check's own.
  userspaceInitrd = stdenv.mkDerivation {
    name = "vm-userspace-initrd";
    dontUnpack = true;
    dontConfigure = true;
    dontBuild = true;
    installPhase = ''
      mkdir -p $out
      python3 ${./make-initrd.py} --out $out/initrd.cpio \
        ${lib.concatMapStringsSep " " (b: "--binary ${lib.escapeShellArg b}") binaries} \
        ${lib.concatStringsSep " " (lib.mapAttrsToList (dst: src: "--tree ${lib.escapeShellArg "${src}=${dst}"}") trees)} \
        ${lib.concatMapStringsSep " " (d: "--tree-skip ${lib.escapeShellArg d}") treeSkip}
    '';
    meta.description = "initramfs part with the VM checks' programs";
  };
  initrd = stdenv.mkDerivation {
    name = "${name}-initrd";
    dontUnpack = true;
    dontConfigure = true;
    dontBuild = true;
    testScriptText = testScript;
    passAsFile = [ "testScriptText" ];
    installPhase = ''
      mkdir -p $out
      python3 ${./make-initrd.py} --out $out/initrd.cpio \
        --busybox ${busybox}/bin/busybox --init ${./init.sh} \
        --modules-tree ${kernel.modules}/lib/modules/${kernel.modDirVersion} \
        ${lib.concatMapStringsSep " " (m: "--module ${lib.escapeShellArg m}") modules} \
        ${lib.concatStringsSep " " (lib.mapAttrsToList (n: p: "--extra-module ${lib.escapeShellArg "${n}=${p}"}") extraModules)} \
        ${lib.concatStringsSep " " (lib.mapAttrsToList (m: pre: "--softdep ${lib.escapeShellArg "${m}=${lib.concatStringsSep "," pre}"}") softDeps)} \
        ${lib.concatStringsSep " " (lib.mapAttrsToList (dst: src: "--file ${lib.escapeShellArg "${src}=${dst}"}") files)} \
        --file "$testScriptTextPath=test.sh"
    '';
    meta.description = "initramfs for the ${name} VM check";
  };
in
stdenv.mkDerivation {
  name = "vm-${name}";
  dontUnpack = true;
  dontConfigure = true;
  dontBuild = true;
  inherit timeout memory accel;
  expectFailure = expectFailure;
  resultAttrsJSON = builtins.toJSON resultAttrs;
  kernelParams = [ "console=ttyS0" "panic=-1" "oops=panic" ] ++ kernelParams;
  installPhase = ''
    mkdir -p $out
    accelArgs="-accel tcg"
    if [ "$accel" = kvm ] && [ -w /dev/kvm ]; then accelArgs="-accel kvm -cpu host"; fi
    cat ${userspaceInitrd}/initrd.cpio ${initrd}/initrd.cpio >$TMPDIR/initrd.cpio
    start=$(date +%s)
    set +e
    timeout --kill-after=10 $timeout qemu-system-x86_64 \
      -machine q35 $accelArgs -m $memory -smp ${toString vmCpus} \
      -display none -monitor none -no-reboot \
      -kernel ${kernel}/bzImage -initrd $TMPDIR/initrd.cpio \
      -append "$kernelParams" \
      -serial file:$out/serial.log -serial file:$TMPDIR/result.txt \
      -netdev user,id=n0 -device virtio-net-pci,netdev=n0
    qemu_rc=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    python3 ${./collect-result.py} --result $TMPDIR/result.txt --serial $out/serial.log \
      --qemu-rc $qemu_rc --elapsed $elapsed --timeout $timeout \
      --kernel ${kernel.modDirVersion} --name ${lib.escapeShellArg name} \
      --extra "$resultAttrsJSON" \
      --out $out/result.json ${lib.optionalString expectFailure "--expect-failure"} \
      ${lib.optionalString recordOnly "--record-only"}
  '';
  passthru = { inherit initrd userspaceInitrd kernel; } // passthru;
  meta.description = "VM check ${name} on kernel ${kernel.modDirVersion}";
}
