//! Writing Nix values safely: every string that came from an input is escaped, and
//! attribute names are quoted unless they are plain identifiers.

use std::fmt::Write as _;

/// A Nix string literal for any text: `"`, `\` and `${` are escaped.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An attribute name: bare when it is a Nix identifier (and not a keyword), quoted otherwise.
pub fn attr_name(s: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
    ];
    let ident = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-'".contains(c))
        && !KEYWORDS.contains(&s);
    if ident {
        s.to_string()
    } else {
        string(s)
    }
}

/// A small builder for Nix values, indenting by two spaces.
#[derive(Debug, Clone)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    List(Vec<Value>),
    Attrs(Vec<(String, Value)>),
}

impl Value {
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    /// A list of strings.
    pub fn strs<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Value::List(items.into_iter().map(|s| Value::str(s.as_ref())).collect())
    }

    pub fn attrs<K: Into<String>>(items: impl IntoIterator<Item = (K, Value)>) -> Self {
        Value::Attrs(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s.push('\n');
        s
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = "  ".repeat(indent + 1);
        let close = "  ".repeat(indent);
        match self {
            Value::Str(s) => out.push_str(&string(s)),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => out.push_str("null"),
            Value::List(items) if items.is_empty() => out.push_str("[ ]"),
            Value::List(items) => {
                out.push_str("[\n");
                for v in items {
                    out.push_str(&pad);
                    v.write(out, indent + 1);
                    out.push('\n');
                }
                out.push_str(&close);
                out.push(']');
            }
            Value::Attrs(items) if items.is_empty() => out.push_str("{ }"),
            Value::Attrs(items) => {
                out.push_str("{\n");
                for (k, v) in items {
                    out.push_str(&pad);
                    out.push_str(&attr_name(k));
                    out.push_str(" = ");
                    v.write(out, indent + 1);
                    out.push_str(";\n");
                }
                out.push_str(&close);
                out.push('}');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_interpolation_and_quotes() {
        assert_eq!(string("a${b}"), r#""a\${b}""#);
        assert_eq!(string("$x \"q\" \\"), r#""$x \"q\" \\""#);
        assert_eq!(string("$${"), r#""$\${""#);
        assert_eq!(attr_name("mlx5"), "mlx5");
        assert_eq!(attr_name("debian-6.1.0-50"), r#""debian-6.1.0-50""#);
        assert_eq!(attr_name("in"), r#""in""#);
    }

    #[test]
    fn renders_nested() {
        let v = Value::attrs([
            ("a", Value::List(vec![Value::Int(1)])),
            ("b c", Value::attrs::<&str>([])),
        ]);
        assert_eq!(v.render(), "{\n  a = [\n    1\n  ];\n  \"b c\" = { };\n}\n");
    }
}
