//! Shared pieces of command output: outcome labels, aligned tables.

use super::apply::Outcome;

pub(crate) fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Reused => "reused",
        Outcome::Updated => "updated",
        Outcome::Replaced => "replaced",
        Outcome::Adopted => "adopted",
    }
}

/// Left-aligned columns two spaces apart, a header row first, no trailing spaces.
pub(crate) fn columns<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let header = header.map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
