//! Reading a drawn ratatui buffer in TUI tests: rows as text, the whole screen, and where a
//! piece of text starts (in cells, not bytes).

use ratatui::buffer::Buffer;

pub fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect()
}

pub fn screen(buf: &Buffer) -> String {
    (0..buf.area.height).map(|y| row(buf, y)).collect::<Vec<_>>().join("\n")
}

/// (x, y) of the first cell of `needle` on screen; panics with the screen when it is not there.
pub fn find(buf: &Buffer, needle: &str) -> (u16, u16) {
    let n: Vec<String> = needle.chars().map(|c| c.to_string()).collect();
    for y in 0..buf.area.height {
        let cells: Vec<String> = (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(x) = (0..cells.len()).find(|&i| cells[i..].starts_with(&n)) {
            return (x as u16, y);
        }
    }
    panic!("{needle:?} not on screen:\n{}", screen(buf));
}
