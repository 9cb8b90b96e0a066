# Subtrees of a Debian linux-source package as a fixed-output path. `rdma-nix fetch`
# normally extracts them (in Rust) and adds the result, so this builder only runs
# where that wasn't done; both give the same tree, pinned by its NAR hash.
{ stdenv, fetchurl, debianInputs }:

{ name, package, subdirs, hash }:

stdenv.mkDerivation {
  inherit name;
  src = fetchurl { inherit (debianInputs.${package}) url hash name; };
  outputHashMode = "recursive";
  outputHashAlgo = "sha256";
  outputHash = hash;
  buildCommand = ''
    mkdir -p $out
    # The package's data tar names its files ./usr/…; a bare usr/… pattern matches none.
    # In the source tarball `*` stands for its top directory only (not a slash), so
    # `*/Makefile` is the top-level Makefile, not every one.
    dpkg-deb --fsys-tarfile $src \
      | tar -xO --wildcards '*usr/src/linux-source-*.tar.xz' \
      | tar -xJ -C $out --strip-components=1 --no-same-owner --wildcards --no-wildcards-match-slash \
          ${builtins.concatStringsSep " " (map (d: "'*/${d}'") subdirs)}
  '';
}
