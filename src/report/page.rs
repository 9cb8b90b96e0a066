//! The matrix page as blocks (headings, text, lists, tables, charts), built once from
//! the model and rendered to Markdown (markdown.rs) and to HTML (html.rs). The page
//! opens with what a kernel developer comes for: whether everything passed and why
//! not, what the last update brought and what changed between neighbouring kernels;
//! then the hot-path table, the restored drivers, the figures, rdma-core's suite per
//! kernel, the charts, and the run's stages when given.

use super::model::*;
use super::stages::{self, Row};
use super::update::LastUpdate;

/// What a cell or a list item says, for the HTML page's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Plain,
    Pass,
    Fail,
    Unsupported,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub mark: Mark,
    /// A test's outcome: the HTML page shows it as a narrow glyph with the word as its
    /// title, so that ten test columns fit a screen.
    pub glyph: bool,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            mark: Mark::Plain,
            glyph: false,
        }
    }

    fn marked(text: impl Into<String>, pass: bool) -> Self {
        Cell {
            text: text.into(),
            mark: if pass { Mark::Pass } else { Mark::Fail },
            glyph: false,
        }
    }

    fn test(status: Option<TestStatus>) -> Self {
        let (text, mark) = match status {
            Some(TestStatus::Pass) => ("pass", Mark::Pass),
            Some(TestStatus::Fail) => ("FAIL", Mark::Fail),
            Some(TestStatus::Unsupported) => ("unsupported", Mark::Unsupported),
            None => ("—", Mark::Plain),
        };
        Cell {
            text: text.into(),
            mark,
            glyph: status.is_some(),
        }
    }

    fn number(v: Option<f64>, decimals: usize) -> Self {
        Cell::plain(v.map_or("—".into(), |v| format!("{v:.decimals$}")))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub head: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    pub mark: Mark,
}

impl Item {
    fn plain(text: impl Into<String>) -> Self {
        Item {
            text: text.into(),
            mark: Mark::Plain,
        }
    }
}

/// A horizontal bar chart of one figure per check (the HTML page only).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub bars: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(String),
    Text(String),
    List(Vec<Item>),
    Table(Table),
    Chart(Chart),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// A figure shown on the page: its column's title and where a check has it.
struct Figure {
    title: &'static str,
    of: FigureOf,
}

enum FigureOf {
    /// perftest's: a test's named figure.
    Perftest(&'static str, &'static str),
    /// A block storage path's.
    Block(fn(&CheckResult) -> Option<f64>),
}

impl Figure {
    fn of(&self, c: &CheckResult) -> Option<f64> {
        match self.of {
            FigureOf::Perftest(test, name) => c.test(test)?.figure(name),
            FigureOf::Block(get) => get(c),
        }
    }
}

/// perftest's figures, then NVMe over Fabrics' and RNBD's beside them.
const FIGURES: [Figure; 7] = [
    Figure {
        title: "send BW (MiB/s)",
        of: FigureOf::Perftest("ib_send_bw", "bw_avg_mib_s"),
    },
    Figure {
        title: "write BW (MiB/s)",
        of: FigureOf::Perftest("ib_write_bw", "bw_avg_mib_s"),
    },
    Figure {
        title: "read lat (µs)",
        of: FigureOf::Perftest("ib_read_lat", "lat_typical_us"),
    },
    Figure {
        title: "NVMe-oF write (MiB/s)",
        of: FigureOf::Block(|c| c.nvmeof.as_ref()?.write_bw_mib_s),
    },
    Figure {
        title: "NVMe-oF 4k read (IOPS)",
        of: FigureOf::Block(|c| c.nvmeof.as_ref()?.randread_iops),
    },
    Figure {
        title: "RNBD write (MiB/s)",
        of: FigureOf::Block(|c| c.rnbd.as_ref()?.write_bw_mib_s),
    },
    Figure {
        title: "RNBD 4k read (IOPS)",
        of: FigureOf::Block(|c| c.rnbd.as_ref()?.randread_iops),
    },
];

impl Matrix {
    /// The page, with the last update's section and the run's stages when given.
    pub fn page(&self, update: Option<&LastUpdate>, stage_rows: Option<&[Row]>) -> Page {
        let mut b = vec![Block::Text(self.summary())];
        let failures = self.failures();
        if !failures.is_empty() {
            b.push(Block::Heading("Why checks failed".into()));
            b.push(Block::List(
                (failures.into_iter())
                    .map(|(c, why)| Item {
                        text: format!("{} {} {}: {why}", c.kernel, c.check, c.device),
                        mark: Mark::Fail,
                    })
                    .collect(),
            ));
        }
        if let Some(u) = update {
            b.extend(self.update_blocks(u));
        }
        b.extend(self.changes_blocks());
        b.push(Block::Heading("Hot paths: kernel × check × test".into()));
        b.push(Block::Table(self.results_table()));
        b.extend(self.restored_blocks());
        b.extend(self.figures_blocks());
        b.extend(self.suite_blocks());
        for f in &FIGURES {
            let bars: Vec<(String, f64)> = (self.checks.iter())
                .filter_map(|c| f.of(c).map(|v| (format!("{} {}", c.kernel, c.device), v)))
                .collect();
            if !bars.is_empty() {
                b.push(Block::Chart(Chart {
                    title: f.title.into(),
                    bars,
                }));
            }
        }
        if let Some(rows) = stage_rows {
            b.extend(stages::blocks(rows));
        }
        Page {
            title: "rdma-nix VM checks: kernel × check × test".into(),
            blocks: b,
        }
    }

    fn summary(&self) -> String {
        let total: f64 = (self.checks.iter().filter_map(|c| c.wall_s))
            .chain(self.restored.iter().filter_map(|r| r.wall_s))
            .sum();
        format!(
            "{} checks on {} kernels and {} restored-driver loads, {} not passing; total VM wall time {total:.0} s. Figures are from software emulation (TCG): compare kernels with each other, not with hardware.",
            self.checks.len(),
            self.kernels().len(),
            self.restored.len(),
            self.failed()
        )
    }

    /// rdma-core's suite tests that changed between neighbouring kernels, regressions
    /// first.
    fn changes_blocks(&self) -> Vec<Block> {
        if self.checks.iter().all(|c| c.suite.is_empty()) {
            return Vec::new();
        }
        let changes = self.suite_changes();
        let mut items: Vec<Item> = (changes.iter())
            .map(|c| Item {
                text: format!(
                    "{}: {} ({} {}) {} on {}, {} on {}{}",
                    if c.regression { "REGRESSION" } else { "fixed" },
                    c.test,
                    c.driver,
                    c.run,
                    if c.regression { "passes" } else { "fails" },
                    c.from_kernel,
                    if c.regression { "fails" } else { "passes" },
                    c.to_kernel,
                    c.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                mark: if c.regression { Mark::Fail } else { Mark::Pass },
            })
            .collect();
        if items.is_empty() {
            items.push(Item::plain(
                "No test of rdma-core's suite changed between neighbouring kernels.",
            ));
        }
        vec![
            Block::Heading("What changed between kernels".into()),
            Block::List(items),
        ]
    }

    fn results_table(&self) -> Table {
        let mut head: Vec<String> = ["kernel", "check", "device", "status"]
            .map(Into::into)
            .into();
        head.extend(self.tests.iter().cloned());
        head.push("negative PABI".into());
        let rows = (self.checks.iter())
            .map(|c| {
                let mut row = vec![
                    Cell::plain(&c.kernel),
                    Cell::plain(&c.check),
                    Cell::plain(&c.device),
                    Cell::marked(c.status.to_string(), c.passed()),
                ];
                row.extend(
                    self.tests
                        .iter()
                        .map(|t| Cell::test(c.test(t).map(|t| t.status))),
                );
                row.push(match c.negative_pabi.as_deref() {
                    Some(v) => Cell::marked(v, v == "pass"),
                    None => Cell::plain("—"),
                });
                row
            })
            .collect();
        Table { head, rows }
    }

    /// The figures of the checks that have any, and each check's VM wall time.
    fn figures_blocks(&self) -> Vec<Block> {
        let mut head: Vec<String> = ["kernel", "check", "device"].map(Into::into).into();
        head.extend(FIGURES.iter().map(|f| f.title.to_owned()));
        head.push("wall (s)".into());
        let rows: Vec<Vec<Cell>> = (self.checks.iter())
            .filter(|c| FIGURES.iter().any(|f| f.of(c).is_some()))
            .map(|c| {
                let mut row = vec![
                    Cell::plain(&c.kernel),
                    Cell::plain(&c.check),
                    Cell::plain(&c.device),
                ];
                row.extend(FIGURES.iter().map(|f| Cell::number(f.of(c), 2)));
                row.push(Cell::number(c.wall_s, 0));
                row
            })
            .collect();
        if rows.is_empty() {
            return Vec::new();
        }
        vec![
            Block::Heading("Figures: perftest, NVMe-oF and RNBD".into()),
            Block::Table(Table { head, rows }),
        ]
    }

    /// The restored drivers' load checks.
    fn restored_blocks(&self) -> Vec<Block> {
        if self.restored.is_empty() {
            return Vec::new();
        }
        let head = [
            "kernel",
            "check",
            "drivers",
            "modules",
            "registered",
            "wall (s)",
        ];
        let rows = (self.restored.iter())
            .map(|r| {
                let status = match &r.reason {
                    Some(why) if r.status != CheckStatus::Pass => format!("{}: {why}", r.status),
                    _ => r.status.to_string(),
                };
                vec![
                    Cell::plain(&r.kernel),
                    Cell::marked(status, r.status == CheckStatus::Pass),
                    Cell::plain(r.drivers.join(" ")),
                    Cell::plain(r.modules.join(" ")),
                    Cell::plain(r.registered.join(" ")),
                    Cell::number(r.wall_s, 0),
                ]
            })
            .collect();
        vec![
            Block::Heading("Restored drivers: loaded, registered, unloaded".into()),
            Block::Table(Table {
                head: head.map(Into::into).into(),
                rows,
            }),
        ]
    }

    /// rdma-core's suite: the counts per kernel × device × run, and every failure
    /// with its reason.
    fn suite_blocks(&self) -> Vec<Block> {
        if self.checks.iter().all(|c| c.suite.is_empty()) {
            return Vec::new();
        }
        let head = [
            "kernel", "device", "run", "pass", "skip", "excluded", "fail", "check",
        ];
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        for c in &self.checks {
            for r in &c.suite {
                rows.push(vec![
                    Cell::plain(&c.kernel),
                    Cell::plain(&c.device),
                    Cell::plain(&r.run),
                    Cell::plain(r.passed.to_string()),
                    Cell::plain(r.skipped.to_string()),
                    Cell::plain(r.excluded.to_string()),
                    Cell::plain(r.failed.to_string()),
                    Cell::marked(r.status.to_string(), r.status == PathStatus::Pass),
                ]);
                failures.extend(r.tests.iter().filter(|t| t.outcome.failed()).map(|t| {
                    Item::plain(format!(
                        "{} {} {}: {} {}: {}",
                        c.kernel,
                        c.device,
                        r.run,
                        t.test,
                        t.outcome,
                        t.why()
                    ))
                }));
            }
        }
        let mut b = vec![
            Block::Heading("rdma-core's own suite".into()),
            Block::Table(Table {
                head: head.map(Into::into).into(),
                rows,
            }),
        ];
        if !failures.is_empty() {
            b.push(Block::List(failures));
        }
        b
    }

    /// The last update's section: each added kernel's checks against its
    /// predecessor's (regressions first), its modules reused or rebuilt, the kernels
    /// retired.
    fn update_blocks(&self, u: &LastUpdate) -> Vec<Block> {
        let mut items = Vec::new();
        if u.added.is_empty() && u.retired.is_empty() {
            items.push(Item::plain("Nothing: the lock was up to date."));
        }
        for c in self.compare_update(u) {
            let was = (c.predecessor_status).map_or("no check".into(), |s| s.to_string());
            let mut text = format!(
                "{} {}: {} (predecessor: {was})",
                c.kernel, c.device, c.status
            );
            if !c.regressions.is_empty() {
                text += &format!("; REGRESSIONS: {}", c.regressions.join(", "));
            }
            if !c.fixes.is_empty() {
                text += &format!("; fixed: {}", c.fixes.join(", "));
            }
            let ok = c.regressions.is_empty() && c.status == CheckStatus::Pass;
            items.push(Item {
                text,
                mark: if ok { Mark::Pass } else { Mark::Fail },
            });
        }
        for a in &u.added {
            if !self.checks.iter().any(|c| c.kernel == a.release) {
                items.push(Item {
                    text: format!("{}: no check result given", a.kernel),
                    mark: Mark::Fail,
                });
            }
            let list = |l: &[String]| match l.is_empty() {
                true => "none".to_owned(),
                false => l.join(", "),
            };
            items.push(Item::plain(format!(
                "{} after {}: modules reused: {}; rebuilt: {}",
                a.kernel,
                a.predecessor.as_deref().unwrap_or("none"),
                list(&a.reused),
                list(&a.rebuilt)
            )));
        }
        items.extend(
            u.retired
                .iter()
                .map(|r| Item::plain(format!("retired: {r}"))),
        );
        vec![
            Block::Heading("What the last update brought".into()),
            Block::List(items),
        ]
    }
}
