//! Every hand-written `.nix` file (all but pkgs/generated/, which the emitter writes)
//! in RFC 166's style, as far as its rules are mechanical. Neither formatter the
//! registries here carry writes RFC 166 (nixpkgs-fmt keeps the comma-first argument
//! sets RFC 166 replaced; alejandra has its own layout), and the official formatter,
//! nixfmt, is in none of them; so this is a check of our own, of the rules a reader
//! sees first:
//! - an attribute set argument lists its attributes one per line, each followed by a
//!   comma: no leading commas, and no `{ a,` opening a multi-line set;
//! - `let` bindings are multiline: no `let … in` on one line;
//! - two spaces per indentation level, no tabs, no trailing whitespace, one final
//!   newline.
//!
//! Inside strings and comments only the whitespace rules apply: a lexer (strings with
//! their `${…}` interpolations, comments) tells code from text.

use std::path::Path;

use crate::common;

/// Each line's code, with string contents and comments blanked out, and whether the
/// line starts in code (not inside a string or a block comment).
fn code_lines(text: &str) -> Vec<(bool, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        /// Code, with the depth of braces opened since the interpolation began.
        Code(usize),
        Str,
        IndStr,
        Block,
    }
    let mut stack = vec![S::Code(0)];
    let mut lines = vec![(true, String::new())];
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let top = *stack.last().expect("the file's code is never popped");
        let c = b[i];
        let next = b.get(i + 1).copied();
        let line = &mut lines.last_mut().expect("one line at least").1;
        if c == b'\n' {
            let in_code = matches!(top, S::Code(_));
            lines.push((in_code, String::new()));
            i += 1;
            continue;
        }
        match top {
            S::Code(depth) => match (c, next) {
                (b'#', _) => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                (b'/', Some(b'*')) => {
                    stack.push(S::Block);
                    i += 2;
                    continue;
                }
                (b'"', _) => {
                    line.push('"');
                    stack.push(S::Str);
                }
                (b'\'', Some(b'\'')) => {
                    line.push_str("''");
                    stack.push(S::IndStr);
                    i += 2;
                    continue;
                }
                (b'{', _) => {
                    line.push('{');
                    *stack.last_mut().unwrap() = S::Code(depth + 1);
                }
                (b'}', _) if depth == 0 && stack.len() > 1 => {
                    stack.pop(); // the end of an interpolation
                }
                (b'}', _) => {
                    line.push('}');
                    *stack.last_mut().unwrap() = S::Code(depth.saturating_sub(1));
                }
                _ => line.push(c as char),
            },
            S::Block => {
                if (c, next) == (b'*', Some(b'/')) {
                    stack.pop();
                    i += 2;
                    continue;
                }
            }
            S::Str => match (c, next) {
                (b'\\', _) => i += 1,
                (b'"', _) => {
                    line.push('"');
                    stack.pop();
                }
                (b'$', Some(b'{')) => {
                    stack.push(S::Code(0));
                    i += 2;
                    continue;
                }
                _ => {}
            },
            S::IndStr => match (c, next) {
                (b'\'', Some(b'\'')) => {
                    // `'''`, `''$` and `''\x` are escapes; `''` alone ends the string.
                    match b.get(i + 2) {
                        Some(b'\'') | Some(b'$') => i += 1,
                        Some(b'\\') => i += 2,
                        _ => {
                            line.push_str("''");
                            stack.pop();
                            i += 1;
                        }
                    }
                }
                (b'$', Some(b'{')) => {
                    stack.push(S::Code(0));
                    i += 2;
                    continue;
                }
                _ => {}
            },
        }
        i += 1;
    }
    lines
}

/// What in `text` breaks the rules, as `line: problem`.
fn problems(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, l) in text.lines().enumerate() {
        if l.contains('\t') {
            out.push(format!("{}: a tab", n + 1));
        }
        if l.ends_with(' ') {
            out.push(format!("{}: trailing whitespace", n + 1));
        }
    }
    if !text.ends_with('\n') || text.ends_with("\n\n") {
        out.push("the end: not exactly one final newline".into());
    }
    let raw: Vec<&str> = text.lines().collect();
    for (n, (in_code, code)) in code_lines(text).iter().enumerate() {
        let body = code.trim();
        if !in_code || body.is_empty() {
            continue;
        }
        let indent = raw[n].len() - raw[n].trim_start().len();
        let words: Vec<&str> = body
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\'' || c == '-'))
            .collect();
        let mut why = Vec::new();
        if !indent.is_multiple_of(2) {
            why.push("indented by an odd number of spaces");
        }
        if body.starts_with(',') {
            why.push("a leading comma (RFC 166: one attribute per line, then a comma)");
        }
        if body.starts_with("{ ") && body.ends_with(',') {
            why.push("an attribute set argument opening on its first attribute");
        }
        if words.contains(&"let") && words.contains(&"in") {
            why.push("`let … in` on one line (RFC 166: let bindings are multiline)");
        }
        out.extend(why.into_iter().map(|w| format!("{}: {w}", n + 1)));
    }
    out
}

#[test]
fn the_style_check_sees_code_not_strings_or_comments() {
    let good = "{\n  a,\n  b ? \"x, y\",\n}:\n\nlet\n  s = ''\n     , odd text with let in\n  '';\nin\n# let x = 1; in\ns\n";
    assert_eq!(problems(good), Vec::<String>::new());
    let bad = "{ a\n, b\n}:\nlet x = 1; in\n   x \n";
    assert_eq!(
        problems(bad),
        [
            "5: trailing whitespace",
            "2: a leading comma (RFC 166: one attribute per line, then a comma)",
            "4: `let … in` on one line (RFC 166: let bindings are multiline)",
            "5: indented by an odd number of spaces",
        ]
    );
    // An interpolation's code inside an indented string, and `''$` escapes.
    let nested = "''\n  ${lib.concatMapStrings (x: \"${x}\") [ ]}\n   ''${not code}\n''\n";
    assert_eq!(problems(nested), Vec::<String>::new());
}

#[test]
fn hand_written_nix_files_follow_rfc_166s_mechanical_rules() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = common::stdout_ok(
        std::process::Command::new("git")
            .args(["ls-files", "*.nix"])
            .current_dir(repo),
    );
    let mut found = Vec::new();
    let mut checked = 0;
    for f in files.lines().filter(|f| !f.starts_with("pkgs/generated/")) {
        let text = std::fs::read_to_string(repo.join(f)).unwrap();
        found.extend(problems(&text).into_iter().map(|p| format!("{f}:{p}")));
        checked += 1;
    }
    assert!(checked > 40, "only {checked} .nix files found");
    assert!(found.is_empty(), "{}", found.join("\n"));
}
