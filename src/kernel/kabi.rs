//! Does a module built for one kernel load on another? What the kernel's module loader
//! checks with modversions on (and what RHEL's weak-modules decides ahead of time):
//! the vermagic flags match, and every symbol the module imports is exported by the
//! kernel with the same CRC. Without modversions only the exact release loads.

use serde::Serialize;

use super::config::KernelConfig;
use super::inspect::LoadedKernel;

use super::module::ModuleInfo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolDiff {
    pub symbol: String,
    pub module_crc: u32,
    /// None: the kernel doesn't export it.
    pub kernel_crc: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub kernel: String,
    pub loads: bool,
    /// Why, in one line.
    pub reason: String,
    pub imports_checked: usize,
    /// Imported symbols that are missing or have another CRC, in module order.
    pub differing: Vec<SymbolDiff>,
}

/// The vermagic flags a kernel built with this config expects of its modules.
pub fn expected_flags(c: &KernelConfig) -> Vec<&'static str> {
    let mut f = Vec::new();
    if c.is_enabled("SMP") {
        f.push("SMP");
    }
    if c.is_enabled("PREEMPT_RT") {
        f.push("preempt_rt");
    } else if c.is_enabled("PREEMPT_BUILD") || c.is_enabled("PREEMPT") {
        f.push("preempt");
    }
    if c.is_enabled("MODULE_UNLOAD") {
        f.push("mod_unload");
    }
    if c.is_enabled("MODVERSIONS") {
        f.push("modversions");
    }
    f
}

pub fn decide(m: &ModuleInfo, k: &LoadedKernel) -> Verdict {
    decide_with(m, k, &std::collections::HashMap::new())
}

/// `decide`, with symbols that modules loaded beside this one export (symbol → CRC):
/// a restored driver reused together with the drivers it links against (rnbd's
/// imports from rtrs-core, rtrs-client's from it), which the kernel doesn't export.
pub fn decide_with(
    m: &ModuleInfo,
    k: &LoadedKernel,
    beside: &std::collections::HashMap<String, u32>,
) -> Verdict {
    let verdict = |loads: bool, reason: String, differing: Vec<SymbolDiff>| Verdict {
        kernel: k.release.clone(),
        loads,
        reason,
        imports_checked: m.imports.len(),
        differing,
    };
    let Some(config) = &k.config else {
        return verdict(
            false,
            "no kernel config among the given files".into(),
            vec![],
        );
    };
    let Some(symvers) = &k.symvers else {
        return verdict(
            false,
            "no Module.symvers among the given files (pass the headers package)".into(),
            vec![],
        );
    };
    let same_release = m.vermagic_release() == Some(k.release.as_str());
    let flags = m.vermagic_flags();
    let want = expected_flags(config);
    if flags != want {
        return verdict(
            false,
            format!(
                "vermagic flags {:?} differ from the kernel's {:?}",
                flags.join(" "),
                want.join(" ")
            ),
            vec![],
        );
    }
    if !config.is_enabled("MODVERSIONS") || m.imports.is_empty() {
        return if same_release {
            verdict(
                true,
                "built for this release (no modversions)".into(),
                vec![],
            )
        } else {
            verdict(
                false,
                format!(
                    "without modversions only the release it was built for ({}) loads it",
                    m.vermagic_release().unwrap_or("?")
                ),
                vec![],
            )
        };
    }
    let differing: Vec<SymbolDiff> = m
        .imports
        .iter()
        .filter_map(|i| {
            let kernel_crc = symvers
                .symbols
                .get(&i.symbol)
                .map(|e| e.crc)
                .or_else(|| beside.get(&i.symbol).copied());
            (kernel_crc != Some(i.crc)).then(|| SymbolDiff {
                symbol: i.symbol.clone(),
                module_crc: i.crc,
                kernel_crc,
            })
        })
        .collect();
    if differing.is_empty() {
        let how = if same_release {
            "built for this release; every import matches".to_string()
        } else {
            format!(
                "reusable: all {} imported symbols have the same CRC here",
                m.imports.len()
            )
        };
        verdict(true, how, differing)
    } else {
        let names: Vec<&str> = differing
            .iter()
            .take(5)
            .map(|d| d.symbol.as_str())
            .collect();
        verdict(
            false,
            format!(
                "{} of {} imported symbols differ: {}{}",
                differing.len(),
                m.imports.len(),
                names.join(", "),
                if differing.len() > 5 { ", …" } else { "" }
            ),
            differing,
        )
    }
}
