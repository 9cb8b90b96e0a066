//! Kconfig files (the kernel's `Kconfig` language, not a `.config`): each `config`
//! entry's symbol, type, prompt, dependencies and selects, with the conditions of the
//! `if` and `menu … depends on` blocks around it. Only what the driver report and the
//! restore planner need; anything else (help text, defaults, ranges) is skipped.

/// A symbol's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolType {
    Bool,
    Tristate,
    String,
    Hex,
    Int,
}

impl SymbolType {
    fn from_keyword(k: &str) -> Option<(Self, bool)> {
        // (type, whether the keyword is a def_* with a default instead of a prompt)
        Some(match k {
            "bool" | "boolean" => (Self::Bool, false),
            "tristate" => (Self::Tristate, false),
            "string" => (Self::String, false),
            "hex" => (Self::Hex, false),
            "int" => (Self::Int, false),
            "def_bool" => (Self::Bool, true),
            "def_tristate" => (Self::Tristate, true),
            _ => return None,
        })
    }
}

/// One `config` (or `menuconfig`) entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub symbol: String,
    #[serde(rename = "type")]
    pub kind: Option<SymbolType>,
    pub prompt: Option<String>,
    /// Each `depends on` expression, the enclosing blocks' conditions first.
    pub depends_on: Vec<String>,
    /// Symbols this one selects (`select X [if Y]`: X).
    pub selects: Vec<String>,
    /// 1-based line of the `config` keyword.
    pub line: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {what}")]
pub struct KconfigError {
    pub line: usize,
    pub what: String,
}

/// Block keywords: an `if`/`menu` pushes its condition, `endif`/`endmenu` pops it.
#[derive(Debug)]
enum Block {
    If(String),
    Menu(Option<String>),
    Choice,
}

fn indent_width(line: &str) -> usize {
    let mut w = 0;
    for c in line.chars() {
        match c {
            ' ' => w += 1,
            '\t' => w = (w / 8 + 1) * 8,
            _ => break,
        }
    }
    w
}

/// A prompt string (`"…"` or `'…'`), and what follows it (`if COND`).
fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &s[1..];
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == q => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Parses a Kconfig file's text.
pub fn parse(text: &str) -> Result<Vec<Entry>, KconfigError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    // In an entry's attributes (the index of the entry), or in a menu's header.
    let mut current: Option<usize> = None;
    let mut menu_header = false;
    // Help text: Some(None) right after `help`, Some(Some(indent)) once it started.
    let mut help: Option<Option<usize>> = None;

    let raw: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < raw.len() {
        let start = i + 1;
        let first = raw[i];
        i += 1;
        if let Some(h) = help {
            let blank = first.trim().is_empty();
            match h {
                _ if blank => continue,
                None => {
                    help = Some(Some(indent_width(first)));
                    continue;
                }
                Some(ind) if indent_width(first) >= ind && ind > 0 => continue,
                Some(_) => help = None,
            }
        }
        // Continuation lines.
        let mut line = first.to_string();
        while line.ends_with('\\') && i < raw.len() {
            line.pop();
            line.push(' ');
            line.push_str(raw[i].trim());
            i += 1;
        }
        let code = strip_comment(&line);
        let t = code.trim();
        if t.is_empty() {
            continue;
        }
        let (kw, rest) = match t.split_once(|c: char| c.is_whitespace()) {
            Some((k, r)) => (k, r.trim()),
            None => (t, ""),
        };
        let bad = |what: String| KconfigError { line: start, what };
        match kw {
            "config" | "menuconfig" => {
                let sym = rest;
                if !super::config::is_symbol_name(sym) {
                    return Err(bad(format!("`{kw}` needs a symbol name, got {rest:?}")));
                }
                let depends_on = blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::If(c) => Some(c.clone()),
                        Block::Menu(c) => c.clone(),
                        Block::Choice => None,
                    })
                    .collect();
                entries.push(Entry {
                    symbol: sym.to_string(),
                    kind: None,
                    prompt: None,
                    depends_on,
                    selects: Vec::new(),
                    line: start,
                });
                current = Some(entries.len() - 1);
                menu_header = false;
            }
            "if" => {
                if rest.is_empty() {
                    return Err(bad("`if` without a condition".into()));
                }
                blocks.push(Block::If(rest.to_string()));
                current = None;
            }
            "menu" => {
                blocks.push(Block::Menu(None));
                current = None;
                menu_header = true;
            }
            "choice" => {
                blocks.push(Block::Choice);
                current = None;
            }
            "endif" | "endmenu" | "endchoice" => {
                let ok = matches!(
                    (kw, blocks.pop()),
                    ("endif", Some(Block::If(_)))
                        | ("endmenu", Some(Block::Menu(_)))
                        | ("endchoice", Some(Block::Choice))
                );
                if !ok {
                    return Err(bad(format!("`{kw}` without its opening block")));
                }
                current = None;
                menu_header = false;
            }
            "source" | "rsource" | "osource" | "orsource" | "comment" | "mainmenu" => {
                current = None;
                menu_header = false;
            }
            "help" | "---help---" => {
                help = Some(None);
            }
            "depends" => {
                let Some(cond) = rest.strip_prefix("on").map(str::trim) else {
                    return Err(bad("`depends` without `on`".into()));
                };
                if cond.is_empty() {
                    return Err(bad("`depends on` without a condition".into()));
                }
                if let Some(e) = current {
                    entries[e].depends_on.push(cond.to_string());
                } else if menu_header {
                    if let Some(Block::Menu(c)) = blocks.last_mut() {
                        *c = Some(match c.take() {
                            Some(prev) => format!("({prev}) && ({cond})"),
                            None => cond.to_string(),
                        });
                    }
                }
            }
            "select" => {
                if let Some(e) = current {
                    let sym = rest.split_whitespace().next().unwrap_or("");
                    if sym.is_empty() {
                        return Err(bad("`select` without a symbol".into()));
                    }
                    entries[e].selects.push(sym.to_string());
                }
            }
            "prompt" => {
                if let Some(e) = current {
                    entries[e].prompt = quoted(rest);
                }
            }
            k => {
                if let (Some(e), Some((ty, _))) = (current, SymbolType::from_keyword(k)) {
                    entries[e].kind = Some(ty);
                    if let Some(p) = quoted(rest) {
                        entries[e].prompt = Some(p);
                    }
                }
                // default, range, imply, visible, option, modules, …: not needed.
            }
        }
    }
    if let Some(b) = blocks.last() {
        return Err(KconfigError {
            line: raw.len(),
            what: format!("file ends inside {b:?}"),
        });
    }
    Ok(entries)
}

/// The line without a `#` comment (outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('#', None) => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_blocks_help_and_selects() {
        let text = r#"# SPDX
config INFINIBAND_EFA
	tristate "Amazon Elastic Fabric Adapter (EFA) support"
	depends on PCI_MSI && 64BIT && !CPU_BIG_ENDIAN
	depends on INFINIBAND_USER_ACCESS
	help
	  This driver supports Amazon Elastic Fabric Adapter (EFA).

	  To compile this driver as a module, choose M here.
	  The module will be called efa.

menu "RNBD"
	depends on BLOCK

if INFINIBAND_ADDR_TRANS
config BLK_DEV_RNBD_CLIENT
	tristate "RDMA Network Block Device driver client" # a comment
	depends on INFINIBAND_RTRS_CLIENT
	select BLK_DEV_RNBD if BLOCK
endif
endmenu

config BLK_DEV_RNBD
	bool
"#;
        let e = parse(text).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].symbol, "INFINIBAND_EFA");
        assert_eq!(e[0].kind, Some(SymbolType::Tristate));
        assert_eq!(
            e[0].prompt.as_deref(),
            Some("Amazon Elastic Fabric Adapter (EFA) support")
        );
        assert_eq!(
            e[0].depends_on,
            [
                "PCI_MSI && 64BIT && !CPU_BIG_ENDIAN",
                "INFINIBAND_USER_ACCESS"
            ]
        );
        assert_eq!(e[1].symbol, "BLK_DEV_RNBD_CLIENT");
        assert_eq!(
            e[1].depends_on,
            ["BLOCK", "INFINIBAND_ADDR_TRANS", "INFINIBAND_RTRS_CLIENT"]
        );
        assert_eq!(e[1].selects, ["BLK_DEV_RNBD"]);
        assert_eq!(e[1].line, 16);
        assert_eq!(e[2].kind, Some(SymbolType::Bool));
        assert!(e[2].depends_on.is_empty());
        assert_eq!(e[2].prompt, None);
    }

    #[test]
    fn continuation_lines_join() {
        let e = parse("config A\n\tdef_tristate m\n\tdepends on B && \\\n\t\tC\n").unwrap();
        assert_eq!(e[0].kind, Some(SymbolType::Tristate));
        assert_eq!(e[0].depends_on, ["B &&  C"]);
    }

    #[test]
    fn bad_input_names_the_line() {
        assert_eq!(parse("config\n").unwrap_err().line, 1);
        assert_eq!(parse("\n\nconfig A-B\n").unwrap_err().line, 3);
        assert_eq!(parse("config A\nendif\n").unwrap_err().line, 2);
        assert!(parse("if X\nconfig A\n")
            .unwrap_err()
            .what
            .contains("ends inside"));
        assert!(parse("config A\n depends B\n").is_err());
    }
}
