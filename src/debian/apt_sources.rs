//! The machine's apt sources: `sources.list` and the `*.list` (one-line) and
//! `*.sources` (deb822) files of `sources.list.d`, where `apt-config` says they are.
//! `fetch` and `update` download from the archive roots they name. Read here rather
//! than asked of `apt-get indextargets`, which builds apt's package cache first: half
//! a second on every call where the cache isn't kept (container images turn it off).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use super::control::Stanzas;

#[derive(Debug, thiserror::Error)]
pub enum AptSourcesError {
    #[error("cannot run apt-config: {0}")]
    AptConfig(String),
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("apt lists no `deb` source (in {0} or its sources.list.d)")]
    None(PathBuf),
}

/// Where apt reads its sources: the list file and the parts directory.
fn source_files() -> Result<(PathBuf, PathBuf), AptSourcesError> {
    let out = Command::new("apt-config")
        .args(["shell", "LIST", "Dir::Etc::sourcelist/f"])
        .args(["PARTS", "Dir::Etc::sourceparts/d"])
        .output()
        .map_err(|e| AptSourcesError::AptConfig(e.to_string()))?;
    if !out.status.success() {
        return Err(AptSourcesError::AptConfig(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix("='"))
            .and_then(|v| v.strip_suffix('\''))
            .map(|v| PathBuf::from(v.replace(r"'\''", "'")))
            .ok_or_else(|| AptSourcesError::AptConfig(format!("no {name} in {text:?}")))
    };
    Ok((value("LIST")?, value("PARTS")?))
}

/// The archive roots of the machine's `deb` sources, in apt's order (the list file,
/// then the parts by name), without a trailing `/`, each once.
pub fn archive_roots() -> Result<Vec<String>, AptSourcesError> {
    let (list, parts) = source_files()?;
    let mut files = vec![list.clone()];
    if let Ok(entries) = fs::read_dir(&parts) {
        let mut named: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("list" | "sources")
                )
            })
            .collect();
        named.sort();
        files.extend(named);
    }
    let mut seen = BTreeSet::new();
    let mut roots = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let text = fs::read_to_string(file).map_err(|e| AptSourcesError::File {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let found = if file.extension().is_some_and(|e| e == "sources") {
            deb822_roots(&text)
        } else {
            one_line_roots(&text)
        }
        .map_err(|message| AptSourcesError::File {
            file: file.clone(),
            message,
        })?;
        roots.extend(found.into_iter().filter(|r| seen.insert(r.clone())));
    }
    if roots.is_empty() {
        return Err(AptSourcesError::None(list));
    }
    Ok(roots)
}

fn root(uri: &str) -> String {
    uri.trim_end_matches('/').to_string()
}

/// The roots of a one-line list: `deb [options] URI suite [component…]`.
pub fn one_line_roots(text: &str) -> Result<Vec<String>, String> {
    let mut roots = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let mut words = line.split_whitespace();
        match words.next() {
            None | Some("deb-src") => continue,
            Some("deb") => {}
            Some(other) => return Err(format!("line {}: unknown type {other:?}", n + 1)),
        }
        let mut rest = line["deb".len()..].trim_start();
        if let Some(options) = rest.strip_prefix('[') {
            let Some((_, after)) = options.split_once(']') else {
                return Err(format!("line {}: `[` without `]`", n + 1));
            };
            rest = after;
        }
        let mut words = rest.split_whitespace();
        match (words.next(), words.next()) {
            (Some(uri), Some(_suite)) => roots.push(root(uri)),
            _ => return Err(format!("line {}: no URI and suite after `deb`", n + 1)),
        }
    }
    Ok(roots)
}

/// The roots of a deb822 sources file: each stanza of `Types: deb` not
/// `Enabled: no`, its `URIs`.
pub fn deb822_roots(text: &str) -> Result<Vec<String>, String> {
    // apt allows comment lines anywhere, the control reader only between stanzas.
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut roots = Vec::new();
    for stanza in Stanzas::new(text.as_bytes()) {
        let st = stanza.map_err(|e| e.to_string())?;
        let types = st.get("Types").unwrap_or_default();
        if !types.split_whitespace().any(|t| t == "deb")
            || st
                .get("Enabled")
                .is_some_and(|e| e.eq_ignore_ascii_case("no"))
        {
            continue;
        }
        let uris = st
            .get("URIs")
            .ok_or_else(|| format!("line {}: a `deb` stanza without URIs", st.line))?;
        roots.extend(uris.split_whitespace().map(root));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources_with_options_comments_and_deb_src() {
        let text = "# a comment\n\
            deb [arch=amd64 signed-by=/k.gpg] http://a.example/debian/ bookworm main\n\
            deb-src http://a.example/debian bookworm main\n\
            \n\
            deb http://b.example/debian-security bookworm-security main # trailing\n";
        assert_eq!(
            one_line_roots(text).unwrap(),
            [
                "http://a.example/debian",
                "http://b.example/debian-security"
            ]
        );
        assert!(one_line_roots("deb http://a.example/debian\n")
            .unwrap_err()
            .starts_with("line 1: "));
        assert!(one_line_roots("deb [arch=amd64 http://a bookworm\n").is_err());
        assert!(one_line_roots("rpm http://a x\n").is_err());
    }

    #[test]
    fn deb822_sources_with_inner_comments_disabled_stanzas_and_many_uris() {
        let text = "Types: deb deb-src\n\
            # a comment inside the stanza\n\
            URIs: http://a.example/debian/ http://c.example/debian\n\
            Suites: bookworm\n\
            Components: main\n\
            \n\
            Types: deb\n\
            URIs: http://off.example/debian\n\
            Suites: bookworm\n\
            Enabled: no\n\
            \n\
            Types: deb-src\n\
            URIs: http://src.example/debian\n\
            Suites: bookworm\n";
        assert_eq!(
            deb822_roots(text).unwrap(),
            ["http://a.example/debian", "http://c.example/debian"]
        );
        assert!(deb822_roots("Types: deb\nSuites: x\n")
            .unwrap_err()
            .contains("without URIs"));
    }

    /// The machine's own sources give the roots `apt-get indextargets` names.
    #[test]
    fn the_machines_roots_are_those_apt_names() {
        let out = Command::new("apt-get")
            .args(["indextargets", "--format", "$(REPO_URI)"])
            .output()
            .expect("apt-get runs (rdma-nix runs on Debian)");
        let apt: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(root)
            .collect();
        let ours: BTreeSet<String> = archive_roots().unwrap().into_iter().collect();
        assert_eq!(ours, apt);
    }
}
