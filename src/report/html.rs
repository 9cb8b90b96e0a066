//! Renders the page's blocks (page.rs) as one self-contained HTML page: the tables
//! coloured by their marks, a test's outcome as a narrow glyph with the word as its
//! title (so that the hot-path table fits a 1400-pixel screen; wider tables scroll in
//! their own box, never the page), and the charts as inline SVG.

use std::fmt::Write as _;

use super::page::{Block, Cell, Chart, Item, Mark, Page, Table};

const STYLE: &str = "body{font-family:sans-serif;max-width:1400px}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}\
th{vertical-align:bottom}td:first-child{white-space:nowrap}.scroll{overflow-x:auto}\
.pass{background:#dfd}.FAIL{background:#fcc}.unsupported{background:#eee}\
td.glyph{text-align:center}";

pub fn render(page: &Page) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&page.title)
    );
    s.push_str(&blocks(&page.blocks));
    s.push_str("</body></html>\n");
    s
}

pub fn blocks(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(h) => {
                let _ = writeln!(s, "<h2>{}</h2>", escape(h));
            }
            Block::Text(t) => {
                let _ = writeln!(s, "<p>{}</p>", escape(t));
            }
            Block::List(items) => list(&mut s, items),
            Block::Table(t) => table(&mut s, t),
            Block::Chart(c) => chart(&mut s, c),
        }
    }
    s
}

fn class(mark: Mark) -> Option<&'static str> {
    match mark {
        Mark::Plain => None,
        Mark::Pass => Some("pass"),
        Mark::Fail => Some("FAIL"),
        Mark::Unsupported => Some("unsupported"),
    }
}

fn list(s: &mut String, items: &[Item]) {
    s.push_str("<ul>\n");
    for i in items {
        match class(i.mark) {
            Some(c) => writeln!(s, "<li class=\"{c}\">{}</li>", escape(&i.text)),
            None => writeln!(s, "<li>{}</li>", escape(&i.text)),
        }
        .expect("writes to a String");
    }
    s.push_str("</ul>\n");
}

fn table(s: &mut String, t: &Table) {
    s.push_str("<div class=\"scroll\"><table>\n<tr>");
    for h in &t.head {
        // Test names break after their underscores.
        let _ = write!(s, "<th>{}</th>", escape(h).replace('_', "_<wbr>"));
    }
    s.push_str("</tr>\n");
    for row in &t.rows {
        s.push_str("<tr>");
        for c in row {
            cell(s, c);
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table></div>\n");
}

fn cell(s: &mut String, c: &Cell) {
    let text = escape(&c.text);
    let _ = match (class(c.mark), c.glyph) {
        (Some(k), true) => {
            let glyph = match c.mark {
                Mark::Pass => "✓",
                Mark::Fail => "✗",
                _ => "n/a",
            };
            write!(s, "<td class=\"{k} glyph\" title=\"{text}\">{glyph}</td>")
        }
        (Some(k), false) => write!(s, "<td class=\"{k}\">{text}</td>"),
        (None, _) => write!(s, "<td>{text}</td>"),
    };
}

/// A horizontal bar chart (SVG) of one figure per check.
fn chart(s: &mut String, c: &Chart) {
    let max = (c.bars.iter().map(|b| b.1))
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (label_w, bar_w, row_h) = (260.0, 360.0, 22.0);
    let height = 30.0 + row_h * c.bars.len() as f64;
    let _ = write!(
        s,
        "<div><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"0\" y=\"16\" font-weight=\"bold\">{t}</text>",
        w = label_w + bar_w + 80.0,
        t = escape(&c.title)
    );
    for (i, (label, v)) in c.bars.iter().enumerate() {
        let y = 26.0 + row_h * i as f64;
        let w = bar_w * v / max;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{l}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{h}\" fill=\"#4a7ab5\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{v:.2}</text>",
            ty = y + 14.0,
            l = escape(label),
            h = row_h - 6.0,
            tx = label_w + w + 4.0,
        );
    }
    s.push_str("</svg></div>\n");
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
