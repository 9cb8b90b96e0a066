//! Which drivers to build out of tree for a kernel that lacks them, and how: the
//! driver's modules whose symbols the kernel's config leaves unset, the symbols to set
//! `=m` (its own and the hidden ones it selects), the other restored drivers it needs
//! first (a `depends on` or `select` naming another driver's symbol: rnbd on rtrs),
//! and why a driver can't be restored there (absent from the source, a dependency
//! the kernel doesn't satisfy, a select the kernel lacks). Everything comes from the
//! source's Kconfig and Kbuild files (`drivers::scan`) and the kernel's config.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::config::KernelConfig;
use super::drivers::{Condition, Driver, SourceDrivers};
use super::kconfig::SymbolType;

/// Tristate values, ordered n < m < y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tri {
    N,
    M,
    Y,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Kconfig expression {expr:?}: {what}")]
pub struct ExprError {
    pub expr: String,
    pub what: String,
}

fn tokens(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "()".contains(c) {
            out.push(c.to_string());
            chars.next();
        } else if "&|!=<>".contains(c) {
            let mut op = String::from(c);
            chars.next();
            if let Some(&d) = chars.peek() {
                if (c == '&' && d == '&')
                    || (c == '|' && d == '|')
                    || ("!<>".contains(c) && d == '=')
                {
                    op.push(d);
                    chars.next();
                }
            }
            out.push(op);
        } else if c == '"' {
            chars.next();
            let mut s = String::from('"');
            for d in chars.by_ref() {
                if d == '"' {
                    break;
                }
                s.push(d);
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() || "()&|!=<>\"".contains(d) {
                    break;
                }
                s.push(d);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

/// Evaluates Kconfig dependency expressions against a config, with some symbols
/// taken as `m` (what the plan builds).
struct Eval<'a> {
    config: &'a KernelConfig,
    planned: &'a BTreeSet<String>,
}

impl Eval<'_> {
    fn value(&self, sym: &str) -> String {
        match sym {
            "y" | "m" | "n" => sym.to_string(),
            s if s.starts_with('"') => s[1..].to_string(),
            s if self.planned.contains(s) => "m".into(),
            s => match self.config.state(s).as_str() {
                "unset" => "n".into(),
                v => v.to_string(),
            },
        }
    }

    fn tri(&self, sym: &str) -> Tri {
        match self.value(sym).as_str() {
            "y" => Tri::Y,
            "m" => Tri::M,
            _ => Tri::N,
        }
    }

    fn eval(&self, expr: &str) -> Result<Tri, ExprError> {
        let toks = tokens(expr);
        let mut pos = 0;
        let v = self.or(&toks, &mut pos, expr)?;
        if pos != toks.len() {
            return Err(ExprError {
                expr: expr.into(),
                what: format!("unexpected {:?}", toks[pos]),
            });
        }
        Ok(v)
    }

    fn or(&self, t: &[String], pos: &mut usize, e: &str) -> Result<Tri, ExprError> {
        let mut v = self.and(t, pos, e)?;
        while t.get(*pos).map(String::as_str) == Some("||") {
            *pos += 1;
            v = v.max(self.and(t, pos, e)?);
        }
        Ok(v)
    }

    fn and(&self, t: &[String], pos: &mut usize, e: &str) -> Result<Tri, ExprError> {
        let mut v = self.not(t, pos, e)?;
        while t.get(*pos).map(String::as_str) == Some("&&") {
            *pos += 1;
            v = v.min(self.not(t, pos, e)?);
        }
        Ok(v)
    }

    fn not(&self, t: &[String], pos: &mut usize, e: &str) -> Result<Tri, ExprError> {
        if t.get(*pos).map(String::as_str) == Some("!") {
            *pos += 1;
            return Ok(match self.not(t, pos, e)? {
                Tri::N => Tri::Y,
                Tri::M => Tri::M,
                Tri::Y => Tri::N,
            });
        }
        self.atom(t, pos, e)
    }

    fn atom(&self, t: &[String], pos: &mut usize, e: &str) -> Result<Tri, ExprError> {
        let err = |what: String| ExprError {
            expr: e.into(),
            what,
        };
        let Some(tok) = t.get(*pos) else {
            return Err(err("ends early".into()));
        };
        *pos += 1;
        if tok == "(" {
            let v = self.or(t, pos, e)?;
            if t.get(*pos).map(String::as_str) != Some(")") {
                return Err(err("unbalanced parentheses".into()));
            }
            *pos += 1;
            return Ok(v);
        }
        if "()&&||!=<>".contains(tok.as_str()) && !tok.starts_with('"') {
            return Err(err(format!("unexpected {tok:?}")));
        }
        match t.get(*pos).map(String::as_str) {
            Some(op @ ("=" | "!=")) => {
                *pos += 1;
                let rhs = t
                    .get(*pos)
                    .ok_or_else(|| err(format!("`{op}` without a right side")))?;
                *pos += 1;
                let same = self.value(tok) == self.value(rhs);
                Ok(if same == (op == "=") { Tri::Y } else { Tri::N })
            }
            Some("<" | ">" | "<=" | ">=") => Err(err("numeric comparisons are not read".into())),
            _ => Ok(self.tri(tok)),
        }
    }
}

/// A driver to build for a kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restore {
    pub driver: String,
    pub dir: String,
    /// The modules built (those whose symbols the plan sets), in the makefile's order.
    pub modules: Vec<String>,
    /// Config symbols passed to make: `m` for a tristate, `y` for a bool (a hidden
    /// gate such as BLK_DEV_RNBD).
    pub symbols: BTreeMap<String, String>,
    /// Restored drivers whose modules this one links against (built first; their
    /// Module.symvers go into KBUILD_EXTRA_SYMBOLS).
    pub needs: Vec<String>,
    /// Source directories besides `dir` its build includes (`-I$(srctree)/…`),
    /// which must be extracted with it and passed to the compiler.
    pub includes: Vec<String>,
    /// Asked for by name, or pulled in by a driver that needs it.
    pub requested: bool,
}

/// A driver that is not built for a kernel, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub driver: String,
    pub reason: String,
    /// Not an error: the kernel has it already.
    pub in_tree: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// In build order.
    pub build: Vec<Restore>,
    pub skip: Vec<Skip>,
}

/// A driver the plan builds, before ordering.
struct Chosen {
    requested: bool,
    symbols: BTreeSet<String>,
    /// Other restored drivers it needs.
    needs: BTreeSet<String>,
}

fn module_symbol(c: &Condition) -> Option<&str> {
    match c {
        Condition::Symbol(s) => Some(s),
        _ => None,
    }
}

/// Plans restoring `names` (driver names: `siw`, `rtrs`, …) on a kernel with this
/// config from its source's drivers.
pub fn plan_restore(src: &SourceDrivers, config: &KernelConfig, names: &[String]) -> Plan {
    plan_against(src, config, names, true)
}

/// The build recipes of `names` from the source alone, for a kernel whose config isn't
/// known when planning (nixpkgs' kernels of the series): as if it built none of the
/// source's drivers and met every other dependency, so every RDMA driver another one
/// depends on is restored with it. Only a driver missing from the source is skipped.
/// Whether the kernel builds a driver itself is read from its own .config when the
/// module is built (pkgs/kernel-modules/restored.nix).
pub fn recipe(src: &SourceDrivers, names: &[String]) -> Plan {
    plan_against(src, &KernelConfig::default(), names, false)
}

fn plan_against(
    src: &SourceDrivers,
    config: &KernelConfig,
    names: &[String],
    check_config: bool,
) -> Plan {
    let by_name: BTreeMap<&str, &Driver> =
        src.drivers.iter().map(|d| (d.name.as_str(), d)).collect();
    // Symbol → the driver whose Kconfig defines it.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for d in &src.drivers {
        for e in &d.symbols {
            owner.insert(e.symbol.as_str(), d.name.as_str());
        }
    }
    let mut out = Plan::default();
    let mut queue: Vec<(String, bool)> = names.iter().map(|n| (n.clone(), true)).collect();
    let mut chosen: BTreeMap<String, Chosen> = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut planned: BTreeSet<String> = BTreeSet::new();
    // Pass 1: which drivers and symbols, following selects and dependencies on other
    // drivers' symbols.
    while let Some((name, requested)) = queue.pop() {
        if chosen.contains_key(&name) || skipped.contains(&name) {
            if requested {
                if let Some(c) = chosen.get_mut(&name) {
                    c.requested = true;
                }
            }
            continue;
        }
        let Some(d) = by_name.get(name.as_str()) else {
            skipped.insert(name.clone());
            out.skip.push(Skip {
                driver: name.clone(),
                reason: format!("not in linux {}'s source", src.version),
                in_tree: false,
            });
            continue;
        };
        let unset: Vec<&str> = d
            .modules
            .iter()
            .filter_map(|m| module_symbol(&m.condition))
            .filter(|s| !config.is_enabled(s))
            .collect();
        if unset.is_empty() {
            skipped.insert(name.clone());
            let states: Vec<String> = d
                .modules
                .iter()
                .map(|m| match module_symbol(&m.condition) {
                    Some(s) => format!("{}={}", s, config.state(s)),
                    None => m.module.clone(),
                })
                .collect();
            out.skip.push(Skip {
                driver: name.clone(),
                reason: format!("built by the kernel already ({})", states.join(", ")),
                in_tree: true,
            });
            continue;
        }
        let mut syms: BTreeSet<String> = unset.iter().map(|s| s.to_string()).collect();
        // Selected symbols of the driver's own Kconfig (rtrs-client selects rtrs-core's).
        loop {
            let more: Vec<String> = d
                .symbols
                .iter()
                .filter(|e| syms.contains(&e.symbol))
                .flat_map(|e| e.selects.iter())
                .filter(|s| {
                    owner.get(s.as_str()) == Some(&d.name.as_str())
                        && !config.is_enabled(s)
                        && !syms.contains(*s)
                })
                .cloned()
                .collect();
            if more.is_empty() {
                break;
            }
            syms.extend(more);
        }
        // Other drivers' symbols it depends on or selects, not in the kernel: restore
        // those drivers too.
        let mut needs = BTreeSet::new();
        for e in d.symbols.iter().filter(|e| syms.contains(&e.symbol)) {
            let named = e
                .depends_on
                .iter()
                .flat_map(|x| tokens(x))
                .chain(e.selects.iter().cloned());
            for s in named {
                if let Some(&o) = owner.get(s.as_str()) {
                    if o != d.name && !config.is_enabled(&s) {
                        needs.insert(o.to_string());
                        queue.push((o.to_string(), false));
                    }
                }
            }
        }
        planned.extend(syms.iter().cloned());
        chosen.insert(
            name.clone(),
            Chosen {
                requested,
                symbols: syms,
                needs,
            },
        );
    }
    // Pass 2: dependencies and selects against the kernel plus everything planned
    // (a driver whose needs were refused is refused too).
    let eval = Eval {
        config,
        planned: &planned,
    };
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    for (name, c) in chosen.iter().filter(|_| check_config) {
        let d = by_name[name.as_str()];
        'entries: for e in d.symbols.iter().filter(|e| c.symbols.contains(&e.symbol)) {
            for dep in &e.depends_on {
                match eval.eval(dep) {
                    Ok(Tri::N) => {
                        refused.insert(
                            name.clone(),
                            format!("{} depends on `{dep}`, which this kernel's config does not satisfy", e.symbol),
                        );
                        break 'entries;
                    }
                    Ok(_) => {}
                    Err(x) => {
                        refused.insert(name.clone(), format!("{}: {x}", e.symbol));
                        break 'entries;
                    }
                }
            }
            for s in &e.selects {
                if !owner.contains_key(s.as_str()) && !config.is_enabled(s) {
                    refused.insert(
                        name.clone(),
                        format!(
                            "{} selects {s}, which this kernel's config leaves unset",
                            e.symbol
                        ),
                    );
                    break 'entries;
                }
            }
        }
    }
    // Refusals propagate to whatever needs a refused driver.
    let mut changed = true;
    while changed {
        changed = false;
        for (name, c) in &chosen {
            if refused.contains_key(name) {
                continue;
            }
            if let Some(n) = c.needs.iter().find(|n| refused.contains_key(*n)) {
                refused.insert(
                    name.clone(),
                    format!("needs {n}, which can't be restored here"),
                );
                changed = true;
            }
        }
    }
    // Build order: a driver after those it needs.
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() + refused.len() < chosen.len() {
        let before = done.len();
        for (name, c) in &chosen {
            if done.contains(name) || refused.contains_key(name) {
                continue;
            }
            if c.needs.iter().all(|n| done.contains(n)) {
                let d = by_name[name.as_str()];
                let symbols: BTreeMap<String, String> = c
                    .symbols
                    .iter()
                    .map(|s| {
                        let bool = d
                            .symbols
                            .iter()
                            .any(|e| &e.symbol == s && e.kind == Some(SymbolType::Bool));
                        (s.clone(), if bool { "y" } else { "m" }.to_string())
                    })
                    .collect();
                out.build.push(Restore {
                    driver: name.clone(),
                    dir: d.dir.clone(),
                    modules: d
                        .modules
                        .iter()
                        .filter(|m| {
                            module_symbol(&m.condition).is_some_and(|s| symbols.contains_key(s))
                        })
                        .map(|m| m.module.clone())
                        .collect(),
                    symbols,
                    needs: c.needs.iter().cloned().collect(),
                    includes: d.includes.clone(),
                    requested: c.requested,
                });
                done.insert(name.clone());
            }
        }
        if done.len() == before {
            // A cycle: refuse what is left, naming it.
            for name in chosen.keys() {
                if !done.contains(name) && !refused.contains_key(name) {
                    refused.insert(
                        name.clone(),
                        "its drivers need each other in a cycle".into(),
                    );
                }
            }
        }
    }
    for (name, reason) in refused {
        out.skip.push(Skip {
            driver: name,
            reason,
            in_tree: false,
        });
    }
    out.skip.sort_by(|a, b| a.driver.cmp(&b.driver));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn src() -> SourceDrivers {
        let files: BTreeMap<PathBuf, String> = [
            ("Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n"),
            ("drivers/infiniband/ulp/rtrs/Makefile", "obj-$(CONFIG_INFINIBAND_RTRS) += rtrs-core.o\nobj-$(CONFIG_INFINIBAND_RTRS_CLIENT) += rtrs-client.o\nobj-$(CONFIG_INFINIBAND_RTRS_SERVER) += rtrs-server.o\n"),
            ("drivers/infiniband/ulp/rtrs/Kconfig", "config INFINIBAND_RTRS\n\ttristate\n\tdepends on INFINIBAND_ADDR_TRANS\nconfig INFINIBAND_RTRS_CLIENT\n\ttristate \"c\"\n\tdepends on INFINIBAND_ADDR_TRANS\n\tselect INFINIBAND_RTRS\nconfig INFINIBAND_RTRS_SERVER\n\ttristate \"s\"\n\tdepends on INFINIBAND_ADDR_TRANS\n\tselect INFINIBAND_RTRS\n"),
            ("drivers/block/rnbd/Makefile", "ccflags-y := -I$(srctree)/drivers/infiniband/ulp/rtrs\nobj-$(CONFIG_BLK_DEV_RNBD_CLIENT) += rnbd-client.o\nobj-$(CONFIG_BLK_DEV_RNBD_SERVER) += rnbd-server.o\n"),
            ("drivers/block/rnbd/Kconfig", "config BLK_DEV_RNBD\n\tbool\nconfig BLK_DEV_RNBD_CLIENT\n\ttristate \"c\"\n\tdepends on INFINIBAND_RTRS_CLIENT\n\tselect BLK_DEV_RNBD\nconfig BLK_DEV_RNBD_SERVER\n\ttristate \"s\"\n\tdepends on INFINIBAND_RTRS_SERVER\n\tselect BLK_DEV_RNBD\n"),
            ("drivers/infiniband/sw/siw/Makefile", "obj-$(CONFIG_RDMA_SIW) += siw.o\n"),
            ("drivers/infiniband/sw/siw/Kconfig", "config RDMA_SIW\n\ttristate \"siw\"\n\tdepends on INET && INFINIBAND\n\tdepends on INFINIBAND_VIRT_DMA\n\tselect LIBCRC32C\n\tselect CRYPTO_CRC32\n"),
            ("drivers/infiniband/sw/rxe/Makefile", "obj-$(CONFIG_RDMA_RXE) += rdma_rxe.o\n"),
            ("drivers/infiniband/hw/efa/Makefile", "obj-$(CONFIG_INFINIBAND_EFA) += efa.o\n"),
            ("drivers/infiniband/hw/efa/Kconfig", "config INFINIBAND_EFA\n\ttristate \"efa\"\n\tdepends on PCI_MSI && 64BIT && !CPU_BIG_ENDIAN\n"),
        ]
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
        super::super::drivers::scan(&files).unwrap()
    }

    fn debian() -> KernelConfig {
        KernelConfig::parse("CONFIG_INET=y\nCONFIG_INFINIBAND=m\nCONFIG_INFINIBAND_VIRT_DMA=y\nCONFIG_INFINIBAND_ADDR_TRANS=y\nCONFIG_LIBCRC32C=m\nCONFIG_CRYPTO_CRC32=m\nCONFIG_RDMA_RXE=m\nCONFIG_PCI_MSI=y\nCONFIG_64BIT=y\n").unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rnbd_pulls_in_rtrs_built_first_with_the_hidden_core() {
        let p = plan_restore(&src(), &debian(), &names(&["rnbd"]));
        let order: Vec<_> = p.build.iter().map(|r| r.driver.as_str()).collect();
        assert_eq!(order, ["rtrs", "rnbd"]);
        assert_eq!(
            p.build[0].modules,
            ["rtrs-core", "rtrs-client", "rtrs-server"]
        );
        assert!(!p.build[0].requested);
        assert_eq!(p.build[1].needs, ["rtrs"]);
        assert_eq!(p.build[1].includes, ["drivers/infiniband/ulp/rtrs"]);
        let syms: Vec<String> = p.build[1]
            .symbols
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            syms,
            [
                "BLK_DEV_RNBD=y",
                "BLK_DEV_RNBD_CLIENT=m",
                "BLK_DEV_RNBD_SERVER=m"
            ]
        );
        assert!(p.skip.is_empty(), "{:?}", p.skip);
    }

    #[test]
    fn in_tree_absent_and_unsatisfiable_drivers_are_skipped_with_reasons() {
        let mut cfg = debian();
        cfg.options.remove("LIBCRC32C");
        let p = plan_restore(&src(), &cfg, &names(&["rxe", "erdma", "siw", "efa"]));
        let order: Vec<_> = p.build.iter().map(|r| r.driver.as_str()).collect();
        assert_eq!(order, ["efa"]);
        let why = |n: &str| p.skip.iter().find(|s| s.driver == n).unwrap().clone();
        assert!(why("rxe").in_tree);
        assert!(why("erdma")
            .reason
            .contains("not in linux 6.1.192's source"));
        assert!(
            why("siw").reason.contains("selects LIBCRC32C"),
            "{:?}",
            why("siw")
        );
        cfg.options.remove("PCI_MSI");
        let p = plan_restore(&src(), &cfg, &names(&["efa"]));
        assert!(p.build.is_empty());
        assert!(p.skip[0]
            .reason
            .contains("PCI_MSI && 64BIT && !CPU_BIG_ENDIAN"));
    }

    #[test]
    fn a_refused_dependency_refuses_what_needs_it() {
        let mut cfg = debian();
        cfg.options.remove("INFINIBAND_ADDR_TRANS");
        let p = plan_restore(&src(), &cfg, &names(&["rnbd"]));
        assert!(p.build.is_empty());
        let rnbd = p.skip.iter().find(|s| s.driver == "rnbd").unwrap();
        assert!(rnbd.reason.contains("needs rtrs"), "{rnbd:?}");
    }

    #[test]
    fn expressions() {
        let cfg = debian();
        let none = BTreeSet::new();
        let e = Eval {
            config: &cfg,
            planned: &none,
        };
        assert_eq!(e.eval("INET && (INFINIBAND || FOO)").unwrap(), Tri::M);
        assert_eq!(e.eval("!CPU_BIG_ENDIAN").unwrap(), Tri::Y);
        assert_eq!(e.eval("INFINIBAND = m").unwrap(), Tri::Y);
        assert_eq!(e.eval("INFINIBAND != m || FOO").unwrap(), Tri::N);
        assert_eq!(e.eval("!INFINIBAND").unwrap(), Tri::M);
        assert!(e.eval("(INET").is_err());
        assert!(e.eval("INET &&").is_err());
        assert!(e.eval("NR > 2").is_err());
    }
}
