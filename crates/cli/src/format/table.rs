//! Elastic tabstops exactly like docker's `tabwriter` (a fork of Go's `text/tabwriter`).
//!
//! Input text is a sequence of lines; each `\t` (or `\v`) terminates a cell. The text after the
//! last tab of a line is not part of any column and is never padded. A *column* is a run of
//! consecutive lines that all have a cell at that index; its width is the widest cell plus the
//! padding, and at least `minwidth`. A line with no tab at all ends every column (so does
//! `\f`), which is why one short line can break the alignment of the table around it, just as
//! in Go. Cell widths count terminal columns: East Asian wide characters take two, combining
//! marks none (like `go-runewidth`).
//!
//! docker uses `NewWriter(out, 10, 1, 3, ' ', 0)`: see [`TabWriter::docker`].

/// A configured tab writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabWriter {
    /// Minimal cell width including padding.
    pub minwidth: usize,
    /// Width of a tab character, used only when padding with tabs.
    pub tabwidth: usize,
    /// Padding added to a cell's width.
    pub padding: usize,
    /// Padding character; `'\t'` pads with tabs.
    pub padchar: char,
}

impl TabWriter {
    /// docker's table writer: minwidth 10, tabwidth 1, padding 3, padding with spaces.
    pub fn docker() -> TabWriter {
        TabWriter {
            minwidth: 10,
            tabwidth: 1,
            padding: 3,
            padchar: ' ',
        }
    }

    /// Aligns `text`, as writing it to a Go tabwriter and flushing would.
    pub fn format(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 2);
        let mut lines: Vec<Vec<Cell>> = vec![Vec::new()];
        let mut cell_start = 0;
        for (i, c) in text.char_indices() {
            match c {
                '\t' | '\u{b}' => {
                    push_cell(&mut lines, text, cell_start, i);
                    cell_start = i + 1;
                }
                '\n' | '\u{c}' => {
                    let ncells = push_cell(&mut lines, text, cell_start, i);
                    cell_start = i + 1;
                    lines.push(Vec::new());
                    if c == '\u{c}' || ncells == 1 {
                        self.flush(&mut lines, &mut out);
                    }
                }
                _ => {}
            }
        }
        if cell_start < text.len() {
            push_cell(&mut lines, text, cell_start, text.len());
        }
        self.flush(&mut lines, &mut out);
        out
    }

    /// Formats and writes every collected line. The last line is the one still being
    /// collected (empty after a newline); it is written without a newline.
    fn flush(&self, lines: &mut Vec<Vec<Cell>>, out: &mut String) {
        let mut widths = Vec::new();
        self.format_block(lines, 0, lines.len(), &mut widths, out);
        lines.clear();
        lines.push(Vec::new());
    }

    fn format_block(
        &self,
        lines: &[Vec<Cell>],
        line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut start = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A column block starts here: write the lines before it.
            self.write_lines(lines, start, this, widths, out);
            start = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].width + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format_block(lines, start, this, widths, out);
            widths.pop();
            start = this;
        }
        self.write_lines(lines, start, line1, widths, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<Cell>],
        line0: usize,
        line1: usize,
        widths: &[usize],
        out: &mut String,
    ) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(&cell.text);
                if let Some(w) = widths.get(j) {
                    self.write_padding(cell.width, *w, out);
                }
            }
            if i + 1 < lines.len() {
                out.push('\n');
            }
        }
    }

    fn write_padding(&self, textw: usize, cellw: usize, out: &mut String) {
        if self.padchar == '\t' {
            if self.tabwidth == 0 {
                return;
            }
            let cellw = cellw.div_ceil(self.tabwidth) * self.tabwidth;
            let n = cellw.saturating_sub(textw);
            for _ in 0..n.div_ceil(self.tabwidth) {
                out.push('\t');
            }
            return;
        }
        for _ in 0..cellw.saturating_sub(textw) {
            out.push(self.padchar);
        }
    }
}

#[derive(Debug, Clone)]
struct Cell {
    text: String,
    width: usize,
}

/// Terminates a cell on the current line; returns the number of cells on the line.
fn push_cell(lines: &mut [Vec<Cell>], text: &str, start: usize, end: usize) -> usize {
    let s = &text[start..end];
    let cell = Cell {
        text: s.to_string(),
        width: display_width(s),
    };
    match lines.last_mut() {
        Some(line) => {
            line.push(cell);
            line.len()
        }
        None => 0,
    }
}

/// Terminal width of a string: wide East Asian characters count 2, combining marks and
/// zero-width characters 0, everything else 1.
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Terminal width of one character (see [`display_width`]).
pub fn char_width(c: char) -> usize {
    let u = c as u32;
    if u < 0x20 || (0x7f..0xa0).contains(&u) {
        return 0;
    }
    if u < 0x300 {
        return 1;
    }
    if is_zero_width(u) {
        return 0;
    }
    if is_wide(u) {
        2
    } else {
        1
    }
}

fn is_zero_width(u: u32) -> bool {
    matches!(u,
        0x0300..=0x036F
        | 0x0483..=0x0489
        | 0x0591..=0x05BD
        | 0x0610..=0x061A
        | 0x064B..=0x065F
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x200B..=0x200F
        | 0x2028..=0x202E
        | 0x2060..=0x2064
        | 0x20D0..=0x20FF
        | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F
        | 0xFEFF
        | 0xE0100..=0xE01EF
    )
}

/// East Asian Wide and Fullwidth ranges (Unicode `EastAsianWidth.txt`, W and F), plus the
/// emoji presentation block that terminals draw two columns wide.
pub(crate) fn is_wide(u: u32) -> bool {
    matches!(u,
        0x1100..=0x115F
        | 0x231A..=0x231B
        | 0x2329..=0x232A
        | 0x23E9..=0x23EC
        | 0x23F0 | 0x23F3
        | 0x25FD..=0x25FE
        | 0x2614..=0x2615
        | 0x2648..=0x2653
        | 0x267F | 0x2693 | 0x26A1
        | 0x26AA..=0x26AB
        | 0x26BD..=0x26BE
        | 0x26C4..=0x26C5
        | 0x26CE | 0x26D4 | 0x26EA
        | 0x26F2..=0x26F3
        | 0x26F5 | 0x26FA | 0x26FD | 0x2705
        | 0x270A..=0x270B
        | 0x2728 | 0x274C | 0x274E
        | 0x2753..=0x2755
        | 0x2757
        | 0x2795..=0x2797
        | 0x27B0 | 0x27BF
        | 0x2B1B..=0x2B1C
        | 0x2B50 | 0x2B55
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE10..=0xFE19
        | 0xFE30..=0xFE6F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x16FE0..=0x16FE4
        | 0x17000..=0x18CFF
        | 0x1B000..=0x1B2FF
        | 0x1F004 | 0x1F0CF | 0x1F18E
        | 0x1F191..=0x1F19A
        | 0x1F200..=0x1F251
        | 0x1F300..=0x1F64F
        | 0x1F680..=0x1F6FF
        | 0x1F7E0..=0x1F7EB
        | 0x1F90C..=0x1F9FF
        | 0x1FA70..=0x1FAFF
        | 0x20000..=0x3FFFD
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker(text: &str) -> String {
        TabWriter::docker().format(text)
    }

    #[test]
    fn docker_ps_layout() {
        let text = "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n\
                    4f2a9c1d3b5e\tnginx\t\"/docker-entrypoint.…\"\t5 seconds ago\tUp 4 seconds\t80/tcp\tweb\n";
        let want = "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n\
                    4f2a9c1d3b5e   nginx     \"/docker-entrypoint.…\"   5 seconds ago   Up 4 seconds   80/tcp    web\n";
        assert_eq!(docker(text), want);
    }

    #[test]
    fn empty_cells_are_padded_to_the_column() {
        let text = "A\tB\tC\nx\t\tz\n";
        assert_eq!(
            docker(text),
            "A         B         C\nx                   z\n"
        );
    }

    #[test]
    fn last_cell_is_not_padded_and_trailing_tab_pads() {
        assert_eq!(docker("ab\tc\n"), "ab        c\n");
        assert_eq!(docker("ab\t\n"), "ab        \n");
    }

    #[test]
    fn header_only_table() {
        assert_eq!(
            docker("REPOSITORY\tTAG\tIMAGE ID\n"),
            "REPOSITORY   TAG       IMAGE ID\n"
        );
    }

    #[test]
    fn lines_without_tabs_break_columns() {
        let text = "aaaaaaaaaaaa\tb\nplain\nc\td\n";
        assert_eq!(docker(text), "aaaaaaaaaaaa   b\nplain\nc         d\n");
    }

    #[test]
    fn columns_are_blocks_of_consecutive_lines() {
        // The second column exists only on lines 1 and 3, so they are aligned separately.
        let text = "a\tbbbbbbbbbbbbbb\tc\nx\ty\np\tq\tr\n";
        let want = "a         bbbbbbbbbbbbbb   c\nx         y\np         q         r\n";
        assert_eq!(docker(text), want);
    }

    #[test]
    fn wide_characters_count_double() {
        let text = "名前\tX\nab\tY\n";
        assert_eq!(docker(text), "名前      X\nab        Y\n");
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(display_width("é"), 1);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(display_width("…"), 1);
    }

    #[test]
    fn unterminated_last_line_is_aligned_without_newline() {
        assert_eq!(docker("a\tb\nc\td"), "a         b\nc         d");
        assert_eq!(docker(""), "");
    }

    #[test]
    fn custom_settings() {
        let tw = TabWriter {
            minwidth: 0,
            tabwidth: 8,
            padding: 1,
            padchar: '.',
        };
        assert_eq!(
            tw.format("a\tbbb\tc\naaaa\tb\tc\n"),
            "a....bbb.c\naaaa.b...c\n"
        );
        let tabs = TabWriter {
            minwidth: 0,
            tabwidth: 8,
            padding: 1,
            padchar: '\t',
        };
        assert_eq!(
            tabs.format("a\tb\naaaaaaaaa\tc\n"),
            "a\t\tb\naaaaaaaaa\tc\n"
        );
    }
}
