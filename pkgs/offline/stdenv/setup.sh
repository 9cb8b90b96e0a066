# Builder of the offline platform's stdenv.mkDerivation: nixpkgs' generic phases over
# the build root's toolchain (run chrooted in the root by ../roots/enter.sh).
set -euo pipefail
shopt -s nullglob

: "${NIX_BUILD_CORES:=1}"
[ "$NIX_BUILD_CORES" -gt 0 ] || NIX_BUILD_CORES=$(nproc)
export NIX_BUILD_CORES
export HOME="$TMPDIR/home" SOURCE_DATE_EPOCH=315532800 LC_ALL=C
mkdir -p "$HOME"

# Every output, as in nixpkgs: $out, $dev, ... are already in the environment.
for o in ${outputs:-out}; do
  [ -n "${!o:-}" ] || { echo "setup: output $o has no path" >&2; exit 1; }
done
outputDev=out; for o in ${outputs:-out}; do [ "$o" = dev ] && outputDev=dev; done
outputLib=out; for o in ${outputs:-out}; do [ "$o" = lib ] && outputLib=lib; done
outputBin=out; for o in ${outputs:-out}; do [ "$o" = bin ] && outputBin=bin; done
# Our own libraries are found at run time too (the library output only: a run path
# naming another output would make the outputs refer to each other).
export LDFLAGS="${LDFLAGS:-} -Wl,-rpath,${!outputLib}/lib"

# Inputs from the store: put their bin/, include/, lib/ and pkg-config files in reach
# of the host toolchain (gcc reads CPATH and LIBRARY_PATH; cmake CMAKE_PREFIX_PATH).
# What an input propagates (nix-support/propagated-build-inputs) is added too, as
# nixpkgs' stdenv does; each path once.
declare -A addedInputs=()
addInput() {
  local p=$1
  case "$p" in /nix/store/*) ;; *) return 0 ;; esac
  [ -z "${addedInputs[$p]:-}" ] || return 0
  addedInputs[$p]=1
  [ -d "$p/bin" ] && PATH="$p/bin:$PATH"
  [ -d "$p/include" ] && export CPATH="$p/include${CPATH:+:$CPATH}"
  if [ -d "$p/lib" ]; then
    export LIBRARY_PATH="$p/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LDFLAGS="${LDFLAGS:-} -Wl,-rpath,$p/lib"
  fi
  for d in "$p/lib/pkgconfig" "$p/share/pkgconfig"; do
    [ -d "$d" ] && export PKG_CONFIG_PATH="$d${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  done
  export CMAKE_PREFIX_PATH="$p${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  if [ -f "$p/nix-support/propagated-build-inputs" ]; then
    local q
    for q in $(cat "$p/nix-support/propagated-build-inputs"); do addInput "$q"; done
  fi
}
for p in ${nativeBuildInputs:-} ${buildInputs:-} ${propagatedNativeBuildInputs:-} ${propagatedBuildInputs:-}; do addInput "$p"; done
export PATH

# nixpkgs' substituteInPlace, for the flags the package files use:
# --replace-fail OLD NEW (fails when OLD is absent) and --replace-quiet OLD NEW.
substituteInPlace() {
  local f=$1; shift
  local content; content="$(cat "$f"; printf x)"; content=${content%x}
  while [ $# -gt 0 ]; do
    case "$1" in
      --replace-fail|--replace-quiet)
        [ $# -ge 3 ] || { echo "substituteInPlace: $1 needs two arguments" >&2; return 1; }
        if [ "$1" = --replace-fail ] && [[ "$content" != *"$2"* ]]; then
          echo "substituteInPlace: pattern '$2' doesn't match anything in file '$f'" >&2
          return 1
        fi
        content=${content//"$2"/"$3"}
        shift 3 ;;
      *) echo "substituteInPlace: unsupported flag $1" >&2; return 1 ;;
    esac
  done
  printf '%s' "$content" > "$f"
}

runHook() {
  local hook=$1
  if [ -n "${!hook:-}" ]; then eval "${!hook}"; fi
}

unpackFile() {
  local f=$1
  if [ -d "$f" ]; then
    # Modes and times are kept (a source tree's scripts stay executable, and make sees
    # generated files, like configure, no older than their sources); u+w comes below.
    cp -r --preserve=mode,timestamps --no-preserve=ownership "$f" "./$(basename "$f" | sed 's/^[a-z0-9]\{32\}-//')"
  else
    case "$f" in
      *.deb) mkdir -p deb && dpkg-deb -x "$f" deb ;;
      *.tar|*.tar.*|*.tgz|*.txz) tar xf "$f" --no-same-owner --no-same-permissions ;;
      *) echo "setup: don't know how to unpack $f" >&2; return 1 ;;
    esac
  fi
}

defaultUnpackPhase() {
  [ -n "${src:-}${srcs:-}" ] || { echo "setup: no src" >&2; return 1; }
  mkdir -p "$TMPDIR/src" && cd "$TMPDIR/src"
  for s in ${src:-} ${srcs:-}; do unpackFile "$s"; done
  if [ -n "${sourceRoot:-}" ]; then
    cd "$sourceRoot"
  else
    local dirs=(*/)
    [ ${#dirs[@]} -eq 1 ] || { echo "setup: unpacking gave ${#dirs[@]} directories; set sourceRoot" >&2; return 1; }
    cd "${dirs[0]}"
  fi
  chmod -R u+w .
}

defaultPatchPhase() {
  for p in ${patches:-}; do
    echo "applying patch $p"
    patch ${patchFlags:--p1} < "$p"
  done
}

defaultConfigurePhase() {
  if [ -n "${cmakeConfigure:-}" ] && [ -f CMakeLists.txt ]; then
    # shellcheck disable=SC2086
    cmake -S . -B build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$out" \
      -DCMAKE_INSTALL_BINDIR="${!outputBin}/bin" \
      -DCMAKE_INSTALL_LIBDIR="${!outputLib}/lib" \
      -DCMAKE_INSTALL_INCLUDEDIR="${!outputDev}/include" \
      -DCMAKE_SKIP_BUILD_RPATH=OFF \
      -DCMAKE_INSTALL_RPATH="${!outputLib}/lib" \
      ${cmakeFlags:-}
    cd build
  elif [ -x configure ]; then
    # shellcheck disable=SC2086
    ./configure --prefix="$out" ${configureFlags:-}
  fi
}

defaultBuildPhase() {
  if [ -f build.ninja ]; then
    ninja -j"$NIX_BUILD_CORES" ${ninjaFlags:-} ${buildFlags:-}
  elif [ -f Makefile ] || [ -f makefile ]; then
    # shellcheck disable=SC2086
    make -j"$NIX_BUILD_CORES" ${makeFlags:-} ${buildFlags:-}
  fi
}

defaultCheckPhase() {
  if [ -f build.ninja ]; then ninja test; elif [ -f Makefile ]; then make check; fi
}

defaultInstallPhase() {
  if [ -f build.ninja ]; then
    ninja install
  elif [ -f Makefile ] || [ -f makefile ]; then
    # shellcheck disable=SC2086
    make ${makeFlags:-} ${installFlags:-} install
  fi
}

defaultFixupPhase() {
  # pkg-config files belong to the dev output.
  if [ "$outputDev" != out ] && [ -d "$out/lib/pkgconfig" ]; then
    mkdir -p "${!outputDev}/lib"
    mv "$out/lib/pkgconfig" "${!outputDev}/lib/"
  fi
  for o in ${outputs:-out}; do mkdir -p "${!o}"; done
  # As nixpkgs: the dev output propagates the propagated inputs and, by default, the
  # outputs holding binaries and libraries (so a consumer of `dev` links).
  local prop=(${propagatedNativeBuildInputs:-} ${propagatedBuildInputs:-})
  if [ "$outputDev" != out ] && [ -z "${propagatedBuildOutputs+1}" ]; then
    local o
    for o in $(printf '%s\n' "$outputBin" "$outputLib" | sort -u); do
      [ "$o" = "$outputDev" ] || prop+=("${!o}")
    done
  else
    local o
    for o in ${propagatedBuildOutputs:-}; do prop+=("${!o}"); done
  fi
  if [ ${#prop[@]} -gt 0 ]; then
    mkdir -p "${!outputDev}/nix-support"
    printf '%s ' "${prop[@]}" > "${!outputDev}/nix-support/propagated-build-inputs"
  fi
}

runPhase() {
  local phase=$1
  case "$phase" in
    checkPhase) [ -n "${doCheck:-}" ] || return 0 ;;
    installCheckPhase) [ -n "${doInstallCheck:-}" ] || return 0 ;;
    unpackPhase) [ -z "${dontUnpack:-}" ] || return 0 ;;
    patchPhase) [ -z "${dontPatch:-}" ] || return 0 ;;
    configurePhase) [ -z "${dontConfigure:-}" ] || return 0 ;;
    buildPhase) [ -z "${dontBuild:-}" ] || return 0 ;;
  esac
  echo "=== $phase"
  local pre=pre${phase^} post=post${phase^}
  pre=${pre%Phase} post=${post%Phase}
  runHook "$pre"
  if [ -n "${!phase:-}" ]; then
    eval "${!phase}"
  else
    local fn=default${phase^}
    if declare -F "$fn" >/dev/null; then "$fn"; fi
  fi
  runHook "$post"
}

if [ -n "${buildCommand:-}" ]; then
  eval "$buildCommand"
  exit 0
fi
for phase in ${phases:-unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase installCheckPhase}; do
  runPhase "$phase"
done
