//! Renders the page's blocks (page.rs) as Markdown, readable as plain text too: the
//! page's title is left to the document it goes into (`BENCHMARKS.md` gives its own),
//! and the charts, which are the HTML page's, are left out.

use std::fmt::Write as _;

use super::page::{Block, Page, Table};

pub fn render(page: &Page) -> String {
    blocks(&page.blocks)
}

pub fn blocks(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(h) => {
                if !s.is_empty() && !s.ends_with("\n\n") {
                    s.push('\n');
                }
                let _ = write!(s, "## {h}\n\n");
            }
            Block::Text(t) => {
                let _ = write!(s, "{t}\n\n");
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(s, "- {}", i.text);
                }
                s.push('\n');
            }
            Block::Table(t) => table(&mut s, t),
            Block::Chart(_) => {}
        }
    }
    s
}

fn table(s: &mut String, t: &Table) {
    let _ = writeln!(s, "| {} |", t.head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(t.head.len()));
    for row in &t.rows {
        let cells: Vec<String> = (row.iter())
            .map(|c| c.text.replace('|', "\\|").replace('\n', " "))
            .collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s.push('\n');
}
