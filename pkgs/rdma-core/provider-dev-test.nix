# A consumer of a provider's public library that has only the provider in its inputs
# (its `dev` output, as stdenv picks it): the headers compile, `pkg-config` resolves
# the .pc file's `Requires.private: libibverbs`, and the library links and loads from
# the store. The loader itself lists what it loads (LD_TRACE_LOADED_OBJECTS, what
# `ldd` sets): a nixpkgs build has no `ldd` on its PATH.
{
  stdenv,
  pkg-config,
  provider,
}:

let
  lib' = provider.publicLibrary;
  pc = builtins.replaceStrings [ ".pc" ] [ "" ] lib'.pkgConfig;
in
stdenv.mkDerivation {
  name = "${provider.pname}-dev-consumer";
  dontUnpack = true;
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ provider ];
  buildPhase = ''
    {
      for h in ${toString lib'.headers}; do echo "#include <$h>"; done
      echo 'int main(void) { return 0; }'
    } > consumer.c
    flags=$(pkg-config --cflags --libs ${pc})
    echo "pkg-config ${pc}: $flags"
    # shellcheck disable=SC2086
    cc -o consumer consumer.c $LDFLAGS -Wl,--no-as-needed $flags
  '';
  installPhase = ''
    mkdir -p $out
    echo "$flags" > $out/pkg-config-flags
    LD_TRACE_LOADED_OBJECTS=1 ./consumer > $out/loaded-libraries
  '';
}
