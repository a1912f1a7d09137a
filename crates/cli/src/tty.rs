//! The client's terminal: raw mode for `-t` sessions (restored on drop, also after a panic unwinds), window
//! size, and the detach-key scanner (ctrl-p ctrl-q by default) that lets a user leave a session running.

use std::io::IsTerminal;

/// Puts stdin in raw mode while alive, if stdin is a terminal.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        // Keep output post-processing so "\n" from our own messages still returns the carriage.
        raw.output_modes.insert(rustix::termios::OutputModes::OPOST);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

/// The terminal's size (rows, columns), from stdout or stdin.
pub fn size() -> Option<(u16, u16)> {
    [
        rustix::termios::tcgetwinsize(std::io::stdout()),
        rustix::termios::tcgetwinsize(std::io::stdin()),
    ]
    .into_iter()
    .flatten()
    .find(|ws| ws.ws_row > 0 && ws.ws_col > 0)
    .map(|ws| (ws.ws_row, ws.ws_col))
}

/// Docker's detach-key syntax: comma-separated `ctrl-X` or single characters.
pub fn parse_detach_keys(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        if let Some(k) = p.strip_prefix("ctrl-") {
            let mut c = k.chars();
            let (Some(ch), None) = (c.next(), c.next()) else {
                return None;
            };
            out.push(match ch {
                'a'..='z' => ch as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return None,
            });
        } else if p.len() == 1 && p.is_ascii() {
            out.push(p.as_bytes()[0]);
        } else {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Notices the detach sequence in what the user types (everything is still forwarded: the daemon acts on it).
pub struct DetachWatch {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachWatch {
    pub fn new(keys: Vec<u8>) -> Self {
        DetachWatch { keys, matched: 0 }
    }
    /// True once the whole sequence has been typed.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
            } else {
                self.matched = usize::from(b == self.keys[0]);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_sequence_is_noticed_across_reads() {
        let mut w = DetachWatch::new(parse_detach_keys("ctrl-p,ctrl-q").unwrap());
        assert!(!w.feed(b"ls\x10"));
        assert!(w.feed(b"\x11"));
        let mut w = DetachWatch::new(vec![16, 17]);
        assert!(!w.feed(b"\x10x\x11"));
        assert!(parse_detach_keys("ctrl-1").is_none());
    }

    #[test]
    fn raw_mode_is_harmless_without_a_terminal() {
        let r = RawMode::enable();
        drop(r);
    }
}
