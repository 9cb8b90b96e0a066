# rping alone over one soft device on one kernel: a server and a client on eth0's
# address, three iterations, each side bounded by a timeout, the client started once the
# server listens. The smallest reproducer
# of a hot-path failure (`checks.regressions` in checks/offline/default.nix keeps one):
# it passes when both sides exit 0, and keeps their output in result.json.
{ lib, runVM, softDevice, rdmaNixLib, rdma-core }:

{
  kernelName,
  driver,
  iterations ? 3,
  # Seconds between the device coming up and the server starting.
  delay ? 0,
  # Seconds the server's start is held after the client's side began waiting for it
  # (the harness's own check: the client must wait for the listener, not a guess).
  serverStartDelay ? 0,
}:
let
  sd = softDevice { inherit kernelName driver; };
  plugin = rdmaNixLib.pluginPath sd.provider;
in
runVM (sd.vmModules // {
  name = "rping-${driver}-${kernelName}${lib.optionalString (delay > 0) "-after-${toString delay}s"}${lib.optionalString (serverStartDelay > 0) "-server-held-${toString serverStartDelay}s"}";
  inherit (sd) kernel;
  timeout = 200;
  binaries = [ "/usr/bin/rdma" "${rdma-core}/bin/rping" ];
  files = sd.configFiles // { ${builtins.unsafeDiscardStringContext plugin} = plugin; };
  resultAttrs = { kernel_name = kernelName; device = sd.dev.name; inherit driver delay; };
  testScript = ''
    export PATH=/bin:/sbin:/usr/bin:${rdma-core}/bin
    ${sd.upScript}
    sleep ${toString delay}
    (sleep ${toString serverStartDelay}; timeout 40 rping -s -a 10.0.2.15 -v -C ${toString iterations} > /tmp/server.log 2>&1; echo $? > /tmp/server.rc) &
    # The client starts once the server listens (rping's port, 7174, in the kernel's
    # RDMA CM listeners), not after a guessed pause: a starved guest took longer than
    # 2 s to get there, and the client, refused, then hung until its timeout.
    for i in $(seq 300); do
      rdma resource show cm_id 2>/dev/null | grep 'state LISTEN' | grep -q ':7174\b' && break
      [ -e /tmp/server.rc ] && break
      sleep 0.2
    done
    timeout 30 rping -c -a 10.0.2.15 -v -C ${toString iterations} > /tmp/client.log 2>&1 && client=0 || client=$?
    for i in $(seq 45); do [ -e /tmp/server.rc ] && break; sleep 1; done
    server=$(cat /tmp/server.rc 2>/dev/null || echo none)
    echo "client exit $client, server exit $server"; cat /tmp/client.log /tmp/server.log
    status=fail; [ "$client" = 0 ] && [ "$server" = 0 ] && status=pass
    esc() { sed 's/\\/\\\\/g; s/"/\\"/g' "$1" | tr '\n' ' '; }
    printf '{"status":"%s","tests":[{"test":"rping","status":"%s"}],"client_exit":"%s","server_exit":"%s","client":"%s","server":"%s"}' \
      "$status" "$status" "$client" "$server" "$(esc /tmp/client.log)" "$(esc /tmp/server.log)" > /tmp/result.json
    [ $status = pass ]
  '';
})
