//! The screen of `sluice top`: what is shown (sort order, namespace filter, the rows, the last
//! scrape's error) and how it is drawn with ratatui: a title line, a table of revisions and
//! a line of keys. Drawing is a function of the state alone, so a test draws it to ratatui's
//! `TestBackend` and compares the frame.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row as TableRow, Table};

use super::model::Row;

/// How rows are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Most requests/s first.
    Rps,
    /// Highest error share first.
    Errors,
    /// Slowest p99 first.
    P99,
    /// Namespace, service, revision.
    Name,
}

/// What the screen shows.
#[derive(Clone, Debug)]
pub struct View {
    /// Where the figures come from.
    pub url: String,
    /// Row order.
    pub sort: Sort,
    /// Only this namespace (None: all).
    pub namespace: Option<String>,
    /// The rows of the last scrape.
    pub rows: Vec<Row>,
    /// Why the last scrape failed, if it did (the rows are then the previous scrape's).
    pub error: Option<String>,
}

/// What a key does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `q`, Esc, Ctrl-C.
    Quit,
    /// `r`, `e`, `p`, `n`.
    Sort(Sort),
    /// `f`: the next namespace among those shown (then all again).
    NextNamespace,
}

const HEADER: [&str; 10] =
    ["NAMESPACE", "SERVICE", "REVISION", "TRAFFIC", "REQ/S", "5XX", "P50", "P99", "IN FLIGHT/CAP", "PODS DES/ACT"];

// === impl Sort ===

impl Sort {
    fn name(self) -> &'static str {
        match self {
            Sort::Rps => "req/s",
            Sort::Errors => "5xx",
            Sort::P99 => "p99",
            Sort::Name => "name",
        }
    }
}

// === impl Key ===

impl Key {
    /// The action of a typed character (None: not a key of `sluice top`).
    pub fn of_char(c: char) -> Option<Key> {
        Some(match c {
            'q' => Key::Quit,
            'r' => Key::Sort(Sort::Rps),
            'e' => Key::Sort(Sort::Errors),
            'p' => Key::Sort(Sort::P99),
            'n' => Key::Sort(Sort::Name),
            'f' => Key::NextNamespace,
            _ => return None,
        })
    }
}

// === impl View ===

impl View {
    /// Applies a key; false when it quits.
    pub fn press(&mut self, key: Key) -> bool {
        match key {
            Key::Quit => return false,
            Key::Sort(s) => self.sort = s,
            Key::NextNamespace => {
                let mut names: Vec<&str> = self.rows.iter().map(|r| r.key.namespace.as_str()).collect();
                names.dedup();
                names.sort_unstable();
                names.dedup();
                let next = match &self.namespace {
                    None => names.first().map(|n| n.to_string()),
                    Some(cur) => names.iter().find(|n| **n > cur.as_str()).map(|n| n.to_string()),
                };
                self.namespace = next;
            }
        }
        true
    }

    /// The rows shown: filtered by namespace; each service's total, then its revisions;
    /// services and the revisions of each in the chosen order (names break ties).
    pub fn shown(&self) -> Vec<&Row> {
        let (mut services, mut revisions): (Vec<&Row>, Vec<&Row>) = self
            .rows
            .iter()
            .filter(|r| self.namespace.as_ref().is_none_or(|ns| &r.key.namespace == ns))
            .partition(|r| r.is_service());
        let desc = |a: Option<f64>, b: Option<f64>| b.unwrap_or(-1.0).total_cmp(&a.unwrap_or(-1.0));
        let order = |a: &&Row, b: &&Row| {
            let first = match self.sort {
                Sort::Rps => desc(a.rps, b.rps),
                Sort::Errors => desc(a.error_rate, b.error_rate),
                Sort::P99 => desc(a.p99, b.p99),
                Sort::Name => std::cmp::Ordering::Equal,
            };
            first.then_with(|| a.key.cmp(&b.key))
        };
        services.sort_by(order);
        revisions.sort_by(order);
        let mut shown = Vec::with_capacity(services.len() + revisions.len());
        for svc in services {
            shown.push(svc);
            let of = |r: &&&Row| r.key.namespace == svc.key.namespace && r.key.service == svc.key.service;
            shown.extend(revisions.iter().filter(of).copied());
        }
        shown
    }

    /// Draws the whole screen.
    pub fn draw(&self, frame: &mut Frame) {
        let [title, table, keys] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(frame.area());
        let ns = self.namespace.as_deref().unwrap_or("all");
        let title_text = format!("sluice top  {}  sort: {}  namespace: {ns}", self.url, self.sort.name());
        frame.render_widget(Line::from(title_text).style(Style::new().add_modifier(Modifier::BOLD)), title);
        let shown: Vec<[String; 10]> = self.shown().into_iter().map(cells).collect();
        // Name columns as wide as their longest name (within a cap), so names are not cut
        // while the screen has room.
        let name_width = |i: usize| {
            let longest = shown.iter().map(|c| c[i].chars().count()).chain([HEADER[i].len()]).max().unwrap_or(0);
            Constraint::Length(u16::try_from(longest.min(MAX_NAME_WIDTH)).unwrap_or(u16::MAX))
        };
        let rows = self.shown().into_iter().zip(shown.iter()).map(|(r, c)| {
            let row = TableRow::new(c.clone().map(Cell::from));
            if r.is_service() { row.style(Style::new().add_modifier(Modifier::BOLD)) } else { row }
        });
        let widths = [
            name_width(0),
            name_width(1),
            name_width(2),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Length(12),
        ];
        let header = TableRow::new(HEADER.map(Cell::from)).style(Style::new().add_modifier(Modifier::REVERSED));
        frame.render_widget(Table::new(rows, widths).header(header).column_spacing(1), table);
        let footer = match &self.error {
            Some(e) => format!("scrape failed: {e}"),
            None => "q quit  r/e/p/n sort by req/s, 5xx, p99, name  f next namespace".to_string(),
        };
        frame.render_widget(Line::from(footer), keys);
    }
}

/// The widest a namespace, service or revision column grows.
const MAX_NAME_WIDTH: usize = 40;

/// A row's cells; `-` for what is not known.
fn cells(r: &Row) -> [String; 10] {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let count = |v: Option<f64>| v.map(|n| format!("{n:.0}"));
    [
        r.key.namespace.clone(),
        r.key.service.clone(),
        if r.is_service() { "(all)".to_string() } else { r.key.revision.clone() },
        or_dash(r.traffic.map(|p| format!("{p:.0}%"))),
        or_dash(r.rps.map(|n| format!("{n:.1}"))),
        or_dash(r.error_rate.map(|e| format!("{:.1}%", e * 100.0))),
        or_dash(r.p50.map(millis)),
        or_dash(r.p99.map(millis)),
        format!("{}/{}", or_dash(count(r.in_flight)), or_dash(count(r.capacity))),
        format!("{}/{}", or_dash(count(r.desired)), or_dash(count(r.actual))),
    ]
}

/// `0.42ms`, `12.3ms`, `1.50s`.
fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}
