#!/usr/bin/env python3
"""Build a small, deterministic initramfs (newc cpio; gzip'd when --out ends in .gz)
for the offline VM runner.

Contents: a static busybox, kernel modules with their dependencies (modules.dep)
and soft dependencies, host or store binaries with their shared libraries (ldd),
extra files and directory trees (with the shared libraries of the ELF files in
them), and /init. Module load order is written to /etc/modules-load (with /init).
The runner makes two and concatenates them, which the kernel unpacks in turn: the
programs (--binary, --tree), shared by the checks, and the boot part (--busybox,
--init, modules, --file), each check's own.
"""
import argparse
import gzip
import io
import lzma
import os
import stat
import subprocess
import sys


class Cpio:
    def __init__(self):
        self.entries = {}  # path -> (mode, data)

    def add_dir(self, path):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            self.entries.setdefault(p, (stat.S_IFDIR | 0o755, b""))

    def add_file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path)) if "/" in path else None
        self.entries[path] = (stat.S_IFREG | mode, data)

    def add_symlink(self, path, target):
        path = path.strip("/")
        self.add_dir(os.path.dirname(path)) if "/" in path else None
        self.entries[path] = (stat.S_IFLNK | 0o777, target.encode())

    def write(self, out):
        buf = io.BytesIO()
        for ino, path in enumerate(sorted(self.entries), start=1):
            mode, data = self.entries[path]
            self._entry(buf, ino, path, mode, data)
        self._entry(buf, 0, "TRAILER!!!", 0, b"")
        if out.endswith(".gz"):
            with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(buf.getvalue())
        else:
            # Uncompressed: a guest under software emulation took 4 s of its boot to
            # gunzip 161 MB of Python and pyverbs.
            with open(out, "wb") as f:
                f.write(buf.getvalue())

    @staticmethod
    def _entry(buf, ino, name, mode, data):
        name_b = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        buf.write(b"070701" + b"".join(b"%08X" % v for v in fields))
        buf.write(name_b)
        buf.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        buf.write(data)
        buf.write(b"\0" * ((4 - len(data) % 4) % 4))


def read_modules_dep(tree):
    deps, by_name = {}, {}
    with open(os.path.join(tree, "modules.dep")) as f:
        for line in f:
            mod, _, rest = line.partition(":")
            mod = mod.strip()
            deps[mod] = rest.split()
            base = os.path.basename(mod).split(".ko")[0]
            by_name[base] = mod
            by_name[base.replace("-", "_")] = mod
    return deps, by_name


def resolve_modules(tree, names, soft):
    """Load order: soft dependencies first, then each module's dependencies. A soft
    dependency the kernel doesn't have is skipped (newer kernels moved crc32c and
    crc32 into the library the module links against)."""
    deps, by_name = read_modules_dep(tree)
    # The modules' own soft dependencies (MODULE_SOFTDEP, as depmod lists them:
    # libcrc32c before crc32c), after the ones given, each optional.
    soft = {k: list(v) for k, v in soft.items()}
    softdep_file = os.path.join(tree, "modules.softdep")
    if os.path.exists(softdep_file):
        for line in open(softdep_file):
            words = line.split()
            if len(words) < 3 or words[0] != "softdep":
                continue
            mod, pre, in_pre = words[1].replace("-", "_"), [], False
            for w in words[2:]:
                if w in ("pre:", "post:"):
                    in_pre = w == "pre:"
                elif in_pre:
                    pre.append(w)
            soft.setdefault(mod, []).extend(p for p in pre if p not in soft.get(mod, []))
    # A soft dependency may name an alias (crc32c, crypto-crc32c): every module that
    # provides it (crc32c_generic, crc32c_intel: one that the CPU can't run fails to
    # load, and the crypto API takes another).
    aliases = {}
    alias_file = os.path.join(tree, "modules.alias")
    if os.path.exists(alias_file):
        for line in open(alias_file):
            words = line.split()
            if len(words) == 3 and words[0] == "alias" and "*" not in words[1]:
                aliases.setdefault(words[1].replace("-", "_"), []).append(words[2].replace("-", "_"))
    for mod, pres in soft.items():
        soft[mod] = [t for p in pres for t in ([p] if p.replace("-", "_") in by_name else sorted(aliases.get(p.replace("-", "_"), [p])))]
    # Built into the kernel (virtio_pci on 6.12): nothing to load.
    builtin = set()
    if os.path.exists(os.path.join(tree, "modules.builtin")):
        for line in open(os.path.join(tree, "modules.builtin")):
            builtin.add(os.path.basename(line.strip()).split(".ko")[0].replace("-", "_"))
    order = []
    optional = {p.replace("-", "_") for pres in soft.values() for p in pres}

    def visit(name, chain=()):
        key = name.replace("-", "_")
        if key in builtin and key not in by_name:
            return
        if key not in by_name:
            if key in optional:
                print(f"make-initrd: soft dependency {name} is not in this kernel: skipped")
                return
            sys.exit(f"make-initrd: module {name} is neither in {tree}/modules.dep nor built in")
        rel = by_name[key]
        if rel in order:
            return
        for pre in soft.get(key, []):
            visit(pre, chain + (name,))
        for d in reversed(deps[rel]):
            dname = os.path.basename(d).split(".ko")[0]
            visit(dname, chain + (name,))
        if rel not in order:
            order.append(rel)

    for n in names:
        visit(n)
    return order


def module_bytes(path):
    data = open(path, "rb").read()
    if path.endswith(".xz"):
        data = lzma.decompress(data)
    elif path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    return data


def shared_libs(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    return libs


def add_real_file(cpio, src, dst, mode=None):
    real = os.path.realpath(src)
    st = os.stat(real)
    cpio.add_file(dst, open(real, "rb").read(), mode if mode is not None else (st.st_mode & 0o777) | 0o200)


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def add_binary(cpio, b, dst):
    add_real_file(cpio, b, dst)
    for lib in shared_libs(b):
        add_real_file(cpio, lib, lib.lstrip("/"))
        # glibc dlopens libgcc_s for unwinding (pthread_exit, pthread_cancel:
        # rping's threads); ldd can't see that.
        gcc_s = os.path.join(os.path.dirname(lib), "libgcc_s.so.1")
        if os.path.basename(lib) == "libc.so.6" and os.path.exists(gcc_s):
            add_real_file(cpio, gcc_s, gcc_s.lstrip("/"))


def add_tree(cpio, src, dst, skip):
    """A directory, followed through symlinks, in sorted order; ELF files with their
    libraries. Directories named in `skip` (and __pycache__) are left out."""
    if not os.path.isdir(src):
        sys.exit(f"make-initrd: --tree {src}: not a directory")
    for root, dirs, files in os.walk(src, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in skip and d != "__pycache__")
        rel = os.path.relpath(root, src)
        base = dst if rel == "." else os.path.join(dst, rel)
        cpio.add_dir(base)
        for f in sorted(files):
            path = os.path.join(root, f)
            if not os.path.exists(path):
                continue  # a dangling symlink
            if is_elf(path):
                add_binary(cpio, path, os.path.join(base, f))
            else:
                add_real_file(cpio, path, os.path.join(base, f))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="the archive: FILE.gz gzip'd, else plain cpio")
    ap.add_argument("--busybox", help="the static busybox, as /bin/busybox (the boot part)")
    ap.add_argument("--init", help="/init (the boot part)")
    ap.add_argument("--modules-tree", help="lib/modules/<release> directory")
    ap.add_argument("--module", action="append", default=[], help="module to load, by name")
    ap.add_argument("--extra-module", action="append", default=[], help="NAME=PATH of a module built outside the tree")
    ap.add_argument("--softdep", action="append", default=[], help="MODULE=PRE1,PRE2")
    ap.add_argument("--binary", action="append", default=[], help="binary to copy with its libraries")
    ap.add_argument("--file", action="append", default=[], help="SRC=DST")
    ap.add_argument("--tree", action="append", default=[], help="SRC=DST: a directory, recursively")
    ap.add_argument("--tree-skip", action="append", default=[], help="directory name --tree leaves out")
    a = ap.parse_args()

    cpio = Cpio()
    for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "run", "usr/bin", "usr/sbin"]:
        cpio.add_dir(d)
    if a.busybox:
        add_real_file(cpio, a.busybox, "bin/busybox", 0o755)
    if a.init:
        add_real_file(cpio, a.init, "init", 0o755)

    soft = {}
    for s in a.softdep:
        mod, _, pre = s.partition("=")
        soft.setdefault(mod.replace("-", "_"), []).extend(p for p in pre.split(",") if p)

    load = []
    extra = dict(e.split("=", 1) for e in a.extra_module)
    extra_keys = {m.replace("-", "_"): m for m in extra}
    in_tree = [m for m in a.module if m not in extra]
    # Each out-of-tree module's dependencies, from its own depends=: in-tree ones are
    # resolved in the kernel's tree, out-of-tree ones (rnbd_server on rtrs_server) are
    # loaded before it.
    extra_deps = {}
    for name, path in extra.items():
        info = subprocess.run(["modinfo", "-F", "depends", path], capture_output=True, text=True, check=True)
        extra_deps[name] = [d for d in info.stdout.strip().split(",") if d]
    if in_tree or soft or any(extra_deps.values()):
        if not a.modules_tree:
            sys.exit("make-initrd: --module needs --modules-tree")
        wanted = in_tree + [p for m in extra for p in soft.get(m.replace("-", "_"), [])]
        wanted += [d for ds in extra_deps.values() for d in ds if d.replace("-", "_") not in extra_keys]
        for rel in resolve_modules(a.modules_tree, wanted, soft):
            name = os.path.basename(rel).split(".ko")[0] + ".ko"
            cpio.add_file(f"lib/modules/{name}", module_bytes(os.path.join(a.modules_tree, rel)))
            load.append(name)
    ordered = []

    def visit_extra(name, chain=()):
        if name in ordered:
            return
        if name in chain:
            sys.exit(f"make-initrd: out-of-tree modules depend on each other in a cycle: {' -> '.join(chain + (name,))}")
        for d in extra_deps[name]:
            if d.replace("-", "_") in extra_keys:
                visit_extra(extra_keys[d.replace("-", "_")], chain + (name,))
        ordered.append(name)

    for name in extra:
        visit_extra(name)
    for name in ordered:
        cpio.add_file(f"lib/modules/{name}.ko", module_bytes(extra[name]))
        load.append(f"{name}.ko")
    if a.init:
        cpio.add_file("etc/modules-load", "".join(m + "\n" for m in load).encode())

    for b in a.binary:
        add_binary(cpio, b, b.lstrip("/"))
    for t in a.tree:
        src, _, dst = t.partition("=")
        add_tree(cpio, src, dst.strip("/"), set(a.tree_skip))
    for f in a.file:
        src, _, dst = f.partition("=")
        add_real_file(cpio, src, dst)
    cpio.write(a.out)
    print(f"make-initrd: {len(cpio.entries)} entries, modules: {' '.join(load) or 'none'}")


if __name__ == "__main__":
    main()
