//! Kbuild makefiles (a driver directory's `Makefile` or `Kbuild`): which modules it
//! builds under which config symbol (`obj-$(CONFIG_X) += name.o`), which
//! subdirectories it descends into (`obj-$(CONFIG_X) += dir/`), and each module's
//! objects (`name-y := a.o b.o`, `name-$(CONFIG_Y) += c.o`, `name-objs`).
//! Conditionals (`ifdef`, `ifeq`) are read as if every branch applied.

use std::collections::BTreeMap;

/// When a goal is built: always (`obj-y`, `obj-m`) or with a config symbol.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Always(char),
    Symbol(String),
    /// Anything else make computes (`$(subst m,y,$(CONFIG_X))`), as written.
    Expr(String),
}

/// An object that goes into a module, and the symbol it needs beyond the module's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    pub object: String,
    pub condition: Condition,
}

/// A module the makefile builds (`name.o` in an `obj-` list).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Module {
    pub name: String,
    pub condition: Condition,
    /// Its objects; just `name.o` when it is built from one file.
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Makefile {
    pub modules: Vec<Module>,
    /// Subdirectories (`dir/` in an `obj-` list) with their conditions.
    pub subdirs: Vec<(String, Condition)>,
    /// Source directories its flags include (`-I$(srctree)/drivers/…`): out of tree,
    /// `srctree` is the headers tree, so these must come with the source.
    pub srctree_includes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {what}")]
pub struct KbuildError {
    pub line: usize,
    pub what: String,
}

/// `y`, `m`, or `$(CONFIG_X)`.
fn condition(s: &str) -> Option<Condition> {
    match s {
        "y" | "m" => s.chars().next().map(Condition::Always),
        _ => {
            let sym = s.strip_prefix("$(CONFIG_")?.strip_suffix(')')?;
            super::config::is_symbol_name(sym).then(|| Condition::Symbol(sym.to_string()))
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses a Kbuild makefile's text.
pub fn parse(text: &str) -> Result<Makefile, KbuildError> {
    let mut mf = Makefile::default();
    // name → (condition, objects) from `name-<cond>` and `name-objs` assignments.
    let mut composite: BTreeMap<String, Vec<Part>> = BTreeMap::new();
    let raw: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < raw.len() {
        let start = i + 1;
        let mut line = strip_comment(raw[i]).to_string();
        i += 1;
        while line.trim_end().ends_with('\\') && i < raw.len() {
            let t = line.trim_end().len();
            line.truncate(t - 1);
            line.push(' ');
            line.push_str(strip_comment(raw[i]).trim());
            i += 1;
        }
        let bad = |what: String| KbuildError { line: start, what };
        for w in line.split("-I").skip(1) {
            let w = w.trim_start();
            if let Some(dir) = w.strip_prefix("$(srctree)/") {
                let dir: String = dir
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ')' && *c != '"')
                    .collect();
                let dir = dir.trim_end_matches('/').to_string();
                if !dir.is_empty()
                    && !dir.split('/').any(|c| c == ".." || c.is_empty())
                    && !mf.srctree_includes.contains(&dir)
                {
                    mf.srctree_includes.push(dir);
                }
            }
        }
        // `lhs op rhs` with op one of += := ?= =.
        let Some(eq) = line.find('=') else { continue };
        let (lhs, rhs) = (&line[..eq], &line[eq + 1..]);
        let lhs = lhs.trim_end_matches(['+', ':', '?']).trim();
        if lhs.is_empty() || (!lhs.starts_with("obj-") && lhs.contains(char::is_whitespace)) {
            continue; // a recipe, a conditional, `export A = …`: not an assignment we read
        }
        let words = rhs.split_whitespace();
        if let Some(cond) = lhs.strip_prefix("obj-") {
            let cond = match condition(cond) {
                Some(c) => c,
                None if cond.starts_with("$(") && cond.ends_with(')') => {
                    Condition::Expr(cond.to_string())
                }
                None => return Err(bad(format!("`{lhs}`: expected obj-y, obj-m or obj-$(…)"))),
            };
            for w in words {
                if let Some(dir) = w.strip_suffix('/') {
                    if !valid_name(dir) {
                        return Err(bad(format!("`{w}`: not a subdirectory name")));
                    }
                    mf.subdirs.push((dir.to_string(), cond.clone()));
                } else if let Some(name) = w.strip_suffix(".o") {
                    if !valid_name(name) {
                        return Err(bad(format!("`{w}`: not an object name")));
                    }
                    mf.modules.push(Module {
                        name: name.to_string(),
                        condition: cond.clone(),
                        parts: Vec::new(),
                    });
                } else if !w.starts_with("$(") {
                    return Err(bad(format!(
                        "`{w}` in `{lhs}`: expected an object (.o) or a directory (/)"
                    )));
                }
            }
            continue;
        }
        // `name-y`, `name-m`, `name-objs`, `name-$(CONFIG_X)`.
        let Some((name, cond)) = lhs
            .rsplit_once("-$(")
            .map(|(n, c)| (n, format!("$({c}")))
            .or_else(|| lhs.rsplit_once('-').map(|(n, c)| (n, c.to_string())))
        else {
            continue;
        };
        let cond = match cond.as_str() {
            "objs" | "y" => Condition::Always('y'),
            c => match condition(c) {
                Some(c) => c,
                None => continue, // ccflags-remove-y and the like
            },
        };
        if !valid_name(name) {
            continue;
        }
        let parts = composite.entry(name.to_string()).or_default();
        for w in words.filter(|w| w.ends_with(".o")) {
            parts.push(Part {
                object: w.to_string(),
                condition: cond.clone(),
            });
        }
    }
    for m in &mut mf.modules {
        m.parts = match composite.remove(&m.name) {
            Some(p) if !p.is_empty() => p,
            _ => vec![Part {
                object: format!("{}.o", m.name),
                condition: Condition::Always('y'),
            }],
        };
    }
    Ok(mf)
}

/// The line without its `#` comment.
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Condition {
        Condition::Symbol(s.into())
    }

    #[test]
    fn rtrs_three_modules_with_their_parts() {
        let text = "# SPDX-License-Identifier: GPL-2.0-or-later\n\
CFLAGS_rtrs-clt-trace.o = -I$(src)\n\
\n\
rtrs-client-y := rtrs-clt.o \\\n\
		  rtrs-clt-stats.o \\\n\
		  rtrs-clt-sysfs.o \\\n\
		  rtrs-clt-trace.o\n\
rtrs-server-y := rtrs-srv.o rtrs-srv-sysfs.o\n\
rtrs-core-y := rtrs.o\n\
ccflags-y := -I$(srctree)/drivers/infiniband -I $(srctree)/include/x/\n\
obj-$(CONFIG_INFINIBAND_RTRS)        += rtrs-core.o\n\
obj-$(CONFIG_INFINIBAND_RTRS_CLIENT) += rtrs-client.o\n\
obj-$(CONFIG_INFINIBAND_RTRS_SERVER) += rtrs-server.o\n";
        let m = parse(text).unwrap();
        let names: Vec<_> = m.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["rtrs-core", "rtrs-client", "rtrs-server"]);
        assert_eq!(m.modules[1].condition, sym("INFINIBAND_RTRS_CLIENT"));
        assert_eq!(m.modules[1].parts.len(), 4);
        assert_eq!(m.modules[1].parts[3].object, "rtrs-clt-trace.o");
        assert!(m.subdirs.is_empty());
        assert_eq!(m.srctree_includes, ["drivers/infiniband", "include/x"]);
    }

    #[test]
    fn conditional_parts_single_file_modules_and_subdirs() {
        let text = "obj-$(CONFIG_INFINIBAND_EFA) += efa.o\n\
efa-y := efa_com_cmd.o efa_com.o efa_main.o efa_verbs.o\n\
efa-$(CONFIG_DEBUG_FS) += efa_debugfs.o\n\
obj-$(CONFIG_RDMA_SIW) += siw.o\n\
obj-$(CONFIG_INFINIBAND_USNIC) += usnic/\n\
ifdef CONFIG_FOO\n\
obj-m += extra.o\n\
endif\n";
        let m = parse(text).unwrap();
        assert_eq!(m.modules[0].parts.len(), 5);
        assert_eq!(m.modules[0].parts[4].condition, sym("DEBUG_FS"));
        assert_eq!(m.modules[1].parts[0].object, "siw.o");
        assert_eq!(m.modules[2].condition, Condition::Always('m'));
        assert_eq!(m.subdirs, [("usnic".to_string(), sym("INFINIBAND_USNIC"))]);
    }

    #[test]
    fn bad_goals_name_the_line() {
        assert_eq!(parse("\nobj-z += a.o\n").unwrap_err().line, 2);
        assert_eq!(
            parse("obj-$(subst m,y,$(CONFIG_A)) += a.o $(more)\n")
                .unwrap()
                .modules[0]
                .condition,
            Condition::Expr("$(subst m,y,$(CONFIG_A))".into())
        );
        assert!(parse("obj-y += a.c\n").unwrap_err().what.contains("a.c"));
        assert!(parse("obj-y += ../x/\n").is_err());
    }
}
