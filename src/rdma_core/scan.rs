//! Scanning an rdma-core source tarball (.tar.gz or .tar.xz), streamed: the CMake
//! files are read into memory, nothing is unpacked to disk, and the bytes read are
//! hashed on the way so that the pin names exactly what was scanned.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::cmake::{self, Command};
use super::{
    is_plain_file_name, is_provider_name, kernel_modules_of, ExtraFile, Library, Provider,
    PublicLibrary, Release, Tool, TreePin, Unclassified,
};
use crate::archive::tree::{SourceTree, TreeError};
use crate::archive::DEFAULT_MAX_UNPACKED;
use crate::nix::{HashAlgo, NixHash};

/// Largest CMake file the scanner keeps in memory.
const MAX_CMAKE_FILE: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum ScanError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("{file}: {message}")]
    Archive { file: PathBuf, message: String },
    #[error("{file}: {entry}: {message}")]
    Source {
        file: PathBuf,
        entry: String,
        message: String,
    },
}

/// Scan a tarball on disk.
pub fn scan_file(path: &Path) -> Result<Release, ScanError> {
    let f = File::open(path).map_err(|e| ScanError::Archive {
        file: path.to_path_buf(),
        message: format!("cannot open: {e}"),
    })?;
    scan_reader(f, path, DEFAULT_MAX_UNPACKED)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Scan a tarball from any reader; `file` names it in errors; at most `max_unpacked`
/// bytes are decompressed.
pub fn scan_reader(r: impl Read, file: &Path, max_unpacked: u64) -> Result<Release, ScanError> {
    scan_reader_with_tree(r, file, max_unpacked).map(|(rel, _)| rel)
}

/// Scan a tarball on disk and keep its unpacked tree (`rdma-nix fetch` stores it).
pub fn scan_file_with_tree(path: &Path) -> Result<(Release, SourceTree), ScanError> {
    let f = File::open(path).map_err(|e| ScanError::Archive {
        file: path.to_path_buf(),
        message: format!("cannot open: {e}"),
    })?;
    scan_reader_with_tree(f, path, DEFAULT_MAX_UNPACKED)
}

/// The scan and the tree it read: the tar stream is read once, hashing the file's
/// bytes (the Debian pin) and the unpacked tree (the source pin) on the way.
pub fn scan_reader_with_tree(
    r: impl Read,
    file: &Path,
    max_unpacked: u64,
) -> Result<(Release, SourceTree), ScanError> {
    let archive_err = |message: String| ScanError::Archive {
        file: file.to_path_buf(),
        message,
    };
    let mut hashing = HashingReader {
        inner: r,
        hasher: Sha256::new(),
    };
    let tree = SourceTree::from_compressed(&mut hashing, file, max_unpacked)?;
    // Hash every byte of the file, including any trailing padding after the tar end.
    io::copy(&mut hashing, &mut io::sink())
        .map_err(|e| archive_err(format!("read error after the tar stream: {e}")))?;
    let digest = hashing.hasher.finalize();
    let sha256 = NixHash::new(HashAlgo::Sha256, digest.to_vec()).to_sri();
    let (nar, nar_size) = tree
        .nar_hash()
        .map_err(|e| archive_err(format!("hashing the unpacked tree: {e}")))?;
    let files = collect(&tree, file)?;
    let mut rel = interpret(files, file, sha256)?;
    rel.tree = TreePin {
        nar_hash: nar.to_sri(),
        nar_size,
    };
    Ok((rel, tree))
}

/// What the tree holds that the scanner needs.
struct Files {
    top_dir: String,
    /// CMake files by path below the top directory.
    cmake: BTreeMap<String, String>,
    /// Directories under `providers/`.
    provider_dirs: BTreeSet<String>,
}

fn collect(tree: &SourceTree, file: &Path) -> Result<Files, ScanError> {
    let mut cmake = BTreeMap::new();
    for path in tree.files() {
        if path == "CMakeLists.txt" || path.ends_with("/CMakeLists.txt") {
            let entry_err = |message: String| ScanError::Source {
                file: file.to_path_buf(),
                entry: format!("{}/{path}", tree.top_dir),
                message,
            };
            let bytes = tree
                .read_file(&path, MAX_CMAKE_FILE)
                .map_err(|_| entry_err("CMake file larger than 1 MiB".into()))?
                .expect("listed as a file");
            let text = String::from_utf8(bytes).map_err(|_| entry_err("not UTF-8 text".into()))?;
            cmake.insert(path, text);
        }
    }
    Ok(Files {
        top_dir: tree.top_dir.clone(),
        cmake,
        provider_dirs: tree
            .subdirectories("providers")
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

/// Substitute the variables the scanner knows; None when another one remains.
fn expand(s: &str, vars: &BTreeMap<&str, String>) -> Option<String> {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    (!out.contains("${")).then_some(out)
}

fn is_version(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

struct Ctx<'a> {
    file: &'a Path,
    unclassified: Vec<Unclassified>,
}

impl Ctx<'_> {
    fn err(&self, entry: &str, line: usize, message: String) -> ScanError {
        ScanError::Source {
            file: self.file.to_path_buf(),
            entry: entry.to_string(),
            message: format!("line {line}: {message}"),
        }
    }

    fn note(&mut self, path: &str, line: Option<usize>, what: String) {
        self.unclassified.push(Unclassified {
            path: path.to_string(),
            line,
            what,
        });
    }
}

fn parse_cmake(files: &Files, path: &str, file: &Path) -> Result<Option<Vec<Command>>, ScanError> {
    match files.cmake.get(path) {
        None => Ok(None),
        Some(text) => cmake::parse(text).map(Some).map_err(|e| ScanError::Source {
            file: file.to_path_buf(),
            entry: format!("{}/{path}", files.top_dir),
            message: e.to_string(),
        }),
    }
}

/// A `set(NAME "value")` of the top-level file.
fn top_set<'a>(cmds: &'a [Command], name: &str) -> Option<&'a str> {
    cmds.iter()
        .find(|c| c.name == "set" && c.args.first().is_some_and(|a| a == name))
        .and_then(|c| c.args.get(1))
        .map(String::as_str)
}

/// Commands in provider files that only tune the build; they install nothing.
const BUILD_ONLY: &[&str] = &[
    "set",
    "if",
    "elseif",
    "else",
    "endif",
    "add_definitions",
    "set_source_files_properties",
    "target_include_directories",
    "target_link_libraries",
    "include_directories",
    "target_compile_definitions",
];

fn interpret(files: Files, file: &Path, sha256: String) -> Result<Release, ScanError> {
    let top_path = format!("{}/CMakeLists.txt", files.top_dir);
    let top = parse_cmake(&files, "CMakeLists.txt", file)?.ok_or_else(|| ScanError::Archive {
        file: file.to_path_buf(),
        message: format!("no {top_path}: not an rdma-core source tarball"),
    })?;
    let mut cx = Ctx {
        file,
        unclassified: Vec::new(),
    };
    let version = top_set(&top, "PACKAGE_VERSION")
        .filter(|v| is_version(v))
        .ok_or_else(|| cx.err(&top_path, 1, "no set(PACKAGE_VERSION \"N.N\")".into()))?
        .to_string();
    let pabi: u32 = top_set(&top, "IBVERBS_PABI_VERSION")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            cx.err(
                &top_path,
                1,
                "no numeric set(IBVERBS_PABI_VERSION …)".into(),
            )
        })?;
    let mut vars = BTreeMap::new();
    vars.insert("PACKAGE_VERSION", version.clone());
    vars.insert("IBVERBS_PABI_VERSION", pabi.to_string());

    // Which provider directories the build adds, and under which condition.
    let mut conds: Vec<(String, bool)> = Vec::new();
    let mut added: BTreeMap<String, bool> = BTreeMap::new();
    let mut added_man: BTreeSet<String> = BTreeSet::new();
    for c in &top {
        match c.name.as_str() {
            "if" => conds.push((c.args.join(" "), false)),
            "else" | "elseif" => {
                if let Some(last) = conds.last_mut() {
                    last.1 = true;
                }
            }
            "endif" => {
                conds.pop();
            }
            "add_subdirectory" => {
                let Some(dir) = c.args.first() else { continue };
                let Some(rest) = dir.strip_prefix("providers/") else {
                    continue;
                };
                let coherent = conds
                    .iter()
                    .any(|(cond, in_else)| cond == "HAVE_COHERENT_DMA" && !in_else);
                match rest.split_once('/') {
                    None => {
                        added.insert(rest.to_string(), coherent);
                    }
                    Some((d, "man")) => {
                        added_man.insert(d.to_string());
                    }
                    Some(_) => cx.note(
                        "CMakeLists.txt",
                        Some(c.line),
                        format!("add_subdirectory({dir}): unknown provider subdirectory"),
                    ),
                }
            }
            _ => {}
        }
    }

    let mut providers = Vec::new();
    for (dir, &coherent) in &added {
        if !is_provider_name(dir) {
            return Err(cx.err(
                &top_path,
                1,
                format!("provider directory {dir:?} is not [A-Za-z0-9_]+"),
            ));
        }
        let rel = format!("providers/{dir}/CMakeLists.txt");
        let shown = format!("{}/{rel}", files.top_dir);
        let cmds = parse_cmake(&files, &rel, file)?.ok_or_else(|| {
            cx.err(
                &top_path,
                1,
                format!("added providers/{dir} has no CMakeLists.txt"),
            )
        })?;
        let man = if added_man.contains(dir) {
            let rel = format!("providers/{dir}/man/CMakeLists.txt");
            let cmds = parse_cmake(&files, &rel, file)?.ok_or_else(|| {
                cx.err(
                    &top_path,
                    1,
                    format!("added providers/{dir}/man has no CMakeLists.txt"),
                )
            })?;
            man_pages(&cmds, &rel, &files.top_dir, &mut cx)?
        } else {
            Vec::new()
        };
        let mut found = provider_file(&cmds, dir, &shown, &vars, pabi, &mut cx)?;
        if found.is_empty() {
            return Err(cx.err(
                &shown,
                1,
                "no rdma_provider() or rdma_shared_provider() declaration".into(),
            ));
        }
        for p in &mut found {
            p.needs_coherent_dma = coherent;
            p.man_pages = man.clone();
        }
        providers.extend(found);
    }
    for dir in &files.provider_dirs {
        if !added.contains_key(dir) {
            cx.note(
                &format!("providers/{dir}"),
                None,
                "provider directory not added by the top-level CMakeLists.txt".into(),
            );
        }
    }
    let mut names = BTreeSet::new();
    for p in &providers {
        if !names.insert(p.name.clone()) {
            return Err(cx.err(
                &format!("{}/providers/{}", files.top_dir, p.directory),
                1,
                format!("provider name {:?} declared twice", p.name),
            ));
        }
    }
    providers.sort_by(|a, b| a.name.cmp(&b.name));

    let (core_libraries, tools) = core_parts(&files, file, &vars, &mut cx)?;
    Ok(Release {
        version,
        pabi,
        top_dir: files.top_dir,
        sha256,
        tree: TreePin::default(),
        core_libraries,
        tools,
        providers,
        unclassified: cx.unclassified,
    })
}

fn man_pages(
    cmds: &[Command],
    rel: &str,
    top: &str,
    cx: &mut Ctx,
) -> Result<Vec<String>, ScanError> {
    let mut out = BTreeSet::new();
    let shown = format!("{top}/{rel}");
    let page = |s: &str| {
        s.trim_end_matches(".in")
            .trim_end_matches(".md")
            .to_string()
    };
    for c in cmds {
        let names: Vec<String> = match c.name.as_str() {
            "rdma_man_pages" => c.args.iter().map(|a| page(a)).collect(),
            // Pairs: page, alias.
            "rdma_alias_man_pages" => c.args.iter().skip(1).step_by(2).cloned().collect(),
            n if BUILD_ONLY.contains(&n) => continue,
            n => {
                cx.note(
                    rel,
                    Some(c.line),
                    format!("unknown command {n}() in a man directory"),
                );
                continue;
            }
        };
        for n in names {
            if !is_plain_file_name(&n) {
                return Err(cx.err(
                    &shown,
                    c.line,
                    format!("man page name {n:?} is not a plain file name"),
                ));
            }
            out.insert(n);
        }
    }
    Ok(out.into_iter().collect())
}

/// Split `install(FILES a b DESTINATION d …)`-style arguments.
fn files_and_destination(args: &[String]) -> (Vec<String>, Option<String>, Option<String>) {
    let mut files = Vec::new();
    let mut dest = None;
    let mut rename = None;
    let mut it = args.iter();
    let mut mode = "";
    for a in it.by_ref() {
        match a.as_str() {
            "FILES" | "PROGRAMS" => mode = "files",
            "DESTINATION" => mode = "dest",
            "RENAME" => mode = "rename",
            "PERMISSIONS" | "COMPONENT" | "OPTIONAL" => mode = "",
            _ => match mode {
                "files" => files.push(a.clone()),
                "dest" => dest = Some(a.clone()),
                "rename" => rename = Some(a.clone()),
                _ => {}
            },
        }
    }
    (files, dest, rename)
}

fn provider_file(
    cmds: &[Command],
    dir: &str,
    shown: &str,
    vars: &BTreeMap<&str, String>,
    pabi: u32,
    cx: &mut Ctx,
) -> Result<Vec<Provider>, ScanError> {
    let rel = format!("providers/{dir}/CMakeLists.txt");
    let mut out: Vec<Provider> = Vec::new();
    let mut headers = Vec::new();
    let mut pkg_config = None;
    let mut extra = Vec::new();
    for c in cmds {
        match c.name.as_str() {
            "rdma_provider" | "rdma_shared_provider" => {
                let name = c.args.first().cloned().unwrap_or_default();
                if !is_provider_name(&name) {
                    return Err(cx.err(
                        shown,
                        c.line,
                        format!("provider name {name:?} is not [A-Za-z0-9_]+"),
                    ));
                }
                let public_library = if c.name == "rdma_shared_provider" {
                    let field = |i: usize, what: &str| -> Result<String, ScanError> {
                        c.args
                            .get(i)
                            .and_then(|a| expand(a, vars))
                            .filter(|v| is_version(v))
                            .ok_or_else(|| {
                                cx.err(
                                    shown,
                                    c.line,
                                    format!("rdma_shared_provider({name} …): no numeric {what}"),
                                )
                            })
                    };
                    Some(PublicLibrary {
                        name: format!("lib{name}"),
                        soversion: field(2, "SOVERSION")?,
                        version: field(3, "VERSION")?,
                        headers: Vec::new(),
                        pkg_config: None,
                    })
                } else {
                    None
                };
                let kernel_modules = match kernel_modules_of(&name) {
                    Some(m) => m.iter().map(|s| s.to_string()).collect(),
                    None => {
                        cx.note(
                            &rel,
                            Some(c.line),
                            format!("provider {name}: no known kernel driver"),
                        );
                        Vec::new()
                    }
                };
                out.push(Provider {
                    plugin: format!("lib{name}-rdmav{pabi}.so"),
                    driver_file: format!("{name}.driver"),
                    name,
                    directory: dir.to_string(),
                    public_library,
                    man_pages: Vec::new(),
                    extra_files: Vec::new(),
                    needs_coherent_dma: false,
                    kernel_modules,
                });
            }
            "publish_headers" => {
                let sub = c.args.first().cloned().unwrap_or_default();
                for h in c.args.iter().skip(1) {
                    let base = h.rsplit('/').next().unwrap_or(h);
                    if !is_plain_file_name(base) || !is_plain_file_name(&sub) {
                        return Err(cx.err(
                            shown,
                            c.line,
                            format!("header {h:?} is not a plain file name"),
                        ));
                    }
                    headers.push(format!("{sub}/{base}"));
                }
            }
            "rdma_pkg_config" => {
                let n = c.args.first().cloned().unwrap_or_default();
                if !is_provider_name(&n) {
                    return Err(cx.err(
                        shown,
                        c.line,
                        format!("pkg-config name {n:?} is not [A-Za-z0-9_]+"),
                    ));
                }
                pkg_config = Some(format!("lib{n}.pc"));
            }
            "install" | "rdma_subst_install" => {
                let (files, dest, rename) = files_and_destination(&c.args);
                let Some(dest) = dest.filter(|_| !files.is_empty()) else {
                    cx.note(
                        &rel,
                        Some(c.line),
                        format!("{}() that is not FILES … DESTINATION", c.name),
                    );
                    continue;
                };
                for f in &files {
                    let installed = rename
                        .clone()
                        .unwrap_or_else(|| f.rsplit('/').next().unwrap_or(f).to_string());
                    if !is_plain_file_name(&installed) {
                        return Err(cx.err(
                            shown,
                            c.line,
                            format!("installed file {installed:?} is not a plain file name"),
                        ));
                    }
                    extra.push(ExtraFile {
                        file: installed,
                        destination: dest.clone(),
                    });
                }
            }
            n if BUILD_ONLY.contains(&n) => {}
            n => cx.note(&rel, Some(c.line), format!("unknown command {n}()")),
        }
    }
    let shared: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].public_library.is_some())
        .collect();
    if !headers.is_empty() || pkg_config.is_some() {
        match shared.as_slice() {
            [i] => {
                let lib = out[*i].public_library.as_mut().expect("filtered");
                lib.headers = headers;
                lib.pkg_config = pkg_config;
            }
            _ => cx.note(
                &rel,
                None,
                "headers or pkg-config file without exactly one shared provider".into(),
            ),
        }
    }
    if let Some(first) = out.first_mut() {
        first.extra_files = extra;
    }
    Ok(out)
}

/// The core libraries (`rdma_library`) and tools (`rdma_executable`,
/// `rdma_sbin_executable`) outside providers/, pyverbs and the test directories.
fn core_parts(
    files: &Files,
    file: &Path,
    vars: &BTreeMap<&str, String>,
    cx: &mut Ctx,
) -> Result<(Vec<Library>, Vec<Tool>), ScanError> {
    let mut libs = Vec::new();
    let mut tools = Vec::new();
    for path in files.cmake.keys() {
        let dir = path.strip_suffix("/CMakeLists.txt").unwrap_or("");
        let skip = dir.starts_with("providers")
            || dir.starts_with("pyverbs")
            || dir == "tests"
            || dir.ends_with("/tests")
            || dir.starts_with("buildlib");
        if skip {
            continue;
        }
        let cmds = parse_cmake(files, path, file)?.unwrap_or_default();
        // Helper functions that loop over their arguments, each one a program:
        // `function(f) foreach(I ${ARGN}) rdma_sbin_executable(${I} …)`.
        let mut program_fns: BTreeMap<String, bool> = BTreeMap::new();
        let mut in_fn: Option<String> = None;
        let mut loop_var: Option<String> = None;
        for c in &cmds {
            match c.name.as_str() {
                "function" => in_fn = c.args.first().map(|f| f.to_ascii_lowercase()),
                "endfunction" => (in_fn, loop_var) = (None, None),
                "foreach" if in_fn.is_some() && c.args.get(1).is_some_and(|a| a == "${ARGN}") => {
                    loop_var = c.args.first().cloned()
                }
                "endforeach" => loop_var = None,
                "rdma_executable" | "rdma_sbin_executable" => {
                    if let (Some(f), Some(v)) = (&in_fn, &loop_var) {
                        if c.args.first() == Some(&format!("${{{v}}}")) {
                            program_fns.insert(f.clone(), c.name == "rdma_sbin_executable");
                        }
                    }
                }
                _ => {}
            }
        }
        let mut in_fn = false;
        for c in &cmds {
            if let Some(&sbin) = program_fns.get(&c.name) {
                for name in &c.args {
                    if !is_plain_file_name(name) {
                        cx.note(
                            path,
                            Some(c.line),
                            format!(
                                "{}(): program name {name:?} is not a plain file name",
                                c.name
                            ),
                        );
                        continue;
                    }
                    tools.push(Tool {
                        name: name.clone(),
                        sbin,
                        directory: dir.to_string(),
                    });
                }
                continue;
            }
            match c.name.as_str() {
                "function" => in_fn = true,
                "endfunction" => in_fn = false,
                "rdma_executable" | "rdma_sbin_executable" if in_fn => {}
                "rdma_library" => {
                    let get = |i: usize| c.args.get(i).and_then(|a| expand(a, vars));
                    match (get(0), get(2), get(3)) {
                        (Some(n), Some(so), Some(v))
                            if is_provider_name(&n) && is_version(&so) && is_version(&v) =>
                        {
                            libs.push(Library {
                                name: format!("lib{n}"),
                                soversion: so,
                                version: v,
                                directory: dir.to_string(),
                            })
                        }
                        _ => cx.note(
                            path,
                            Some(c.line),
                            "rdma_library() with arguments the scanner can't read".into(),
                        ),
                    }
                }
                "rdma_executable" | "rdma_sbin_executable" => {
                    let name = c.args.first().and_then(|a| expand(a, vars));
                    match name.filter(|n| is_plain_file_name(n)) {
                        Some(name) => tools.push(Tool {
                            name,
                            sbin: c.name == "rdma_sbin_executable",
                            directory: dir.to_string(),
                        }),
                        None => cx.note(
                            path,
                            Some(c.line),
                            format!(
                                "{}({}) names its program through a variable",
                                c.name,
                                c.args.first().map(String::as_str).unwrap_or("")
                            ),
                        ),
                    }
                }
                _ => {}
            }
        }
    }
    libs.sort_by(|a, b| a.name.cmp(&b.name));
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((libs, tools))
}
