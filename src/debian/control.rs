//! Debian control data (deb822): stanzas of `Field: value` lines separated by blank
//! lines, continuation lines starting with a space or tab. Read as a stream, one
//! stanza at a time (a suite's Packages index is tens of MiB).

use std::io::BufRead;

/// One stanza: fields in their order, names as written (compared case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    pub fields: Vec<(String, String)>,
    /// Line number of the stanza's first line (1-based), for errors.
    pub line: usize,
}

impl Stanza {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ControlError {
    pub line: usize,
    pub message: String,
}

/// The stanzas of a control stream, in order.
pub struct Stanzas<R> {
    input: R,
    line: usize,
    buf: String,
    done: bool,
}

impl<R: BufRead> Stanzas<R> {
    pub fn new(input: R) -> Self {
        Stanzas {
            input,
            line: 0,
            buf: String::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Stanzas<R> {
    type Item = Result<Stanza, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut st = Stanza::default();
        loop {
            self.buf.clear();
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(ControlError {
                        line: self.line + 1,
                        message: format!("read error: {e}"),
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                return (!st.fields.is_empty()).then_some(Ok(st));
            }
            self.line += 1;
            let l = self.buf.trim_end_matches(['\n', '\r']);
            if l.trim().is_empty() {
                if st.fields.is_empty() {
                    continue;
                }
                return Some(Ok(st));
            }
            if l.starts_with('#') && st.fields.is_empty() {
                continue;
            }
            if l.starts_with([' ', '\t']) {
                match st.fields.last_mut() {
                    Some((_, v)) => {
                        v.push('\n');
                        v.push_str(l.trim());
                    }
                    None => {
                        self.done = true;
                        return Some(Err(ControlError {
                            line: self.line,
                            message: "continuation line before any field".into(),
                        }));
                    }
                }
                continue;
            }
            let Some((k, v)) = l.split_once(':') else {
                self.done = true;
                return Some(Err(ControlError {
                    line: self.line,
                    message: format!("not a `Field: value` line: {:?}", truncate(l)),
                }));
            };
            if k.is_empty() || k.contains(char::is_whitespace) {
                self.done = true;
                return Some(Err(ControlError {
                    line: self.line,
                    message: format!("bad field name {:?}", truncate(k)),
                }));
            }
            if st.fields.is_empty() {
                st.line = self.line;
            }
            st.fields.push((k.to_string(), v.trim().to_string()));
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_fields_and_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: x\n more\n\n\n# comment\nPackage: b\n";
        let all: Vec<_> = Stanzas::new(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].get("package"), Some("a"));
        assert_eq!(all[0].get("Description"), Some("x\nmore"));
        assert_eq!(all[1].get("Package"), Some("b"));
        assert_eq!(all[1].line, 8);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Stanzas::new("Package: a\nbroken\n".as_bytes())
            .find_map(Result::err)
            .unwrap();
        assert_eq!(e.line, 2);
        let e = Stanzas::new(" cont\n".as_bytes())
            .find_map(Result::err)
            .unwrap();
        assert_eq!(e.to_string(), "line 1: continuation line before any field");
    }
}
