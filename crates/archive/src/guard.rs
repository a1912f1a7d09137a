//! A reader between the input stream and the tar parser that bounds what the parser may buffer and
//! notices where the stream ended.
//!
//! The `tar` crate reads PAX extension records and GNU long names into memory without a cap, so a
//! hostile layer could declare a 60 GiB "long name" and exhaust memory. The extractor drains each
//! entry's data itself, so the only bytes the parser reads while it looks for the next entry are
//! padding and headers: the extractor arms a budget around each such call and the reader fails once
//! it is spent. The reader also records whether the stream hit end-of-file, which tells a proper end
//! of archive (a zero block) from a stream cut at an entry boundary.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Bytes the parser may read while looking for one entry: padding, headers, PAX records and GNU long
/// names together. Go's archive/tar allows 1 MiB per extension record; we allow a few of those.
pub(crate) const METADATA_BUDGET: u64 = 4 << 20;

/// State shared between the [`Guarded`] reader (owned by the parser) and the extractor.
#[derive(Debug, Default)]
pub(crate) struct GuardState {
    /// Bytes read from the input so far.
    pos: Cell<u64>,
    /// Bytes the parser may still read, when armed.
    budget: Cell<Option<u64>>,
    /// The budget ran out: the error the parser reports is ours.
    tripped: Cell<bool>,
    /// A read returned end-of-file.
    eof: Cell<bool>,
}

impl GuardState {
    /// Arms the metadata budget before asking the parser for the next entry.
    pub(crate) fn arm(&self) {
        self.budget.set(Some(METADATA_BUDGET));
    }

    /// Disarms it once the parser has returned.
    pub(crate) fn disarm(&self) {
        self.budget.set(None);
    }

    /// Input bytes read so far.
    pub(crate) fn pos(&self) -> u64 {
        self.pos.get()
    }

    /// Whether the metadata budget ran out.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.get()
    }

    /// Whether the input reached end-of-file.
    pub(crate) fn eof(&self) -> bool {
        self.eof.get()
    }
}

/// The reader handed to the tar parser.
pub(crate) struct Guarded<R> {
    inner: R,
    state: Rc<GuardState>,
}

impl<R: Read> Guarded<R> {
    pub(crate) fn new(inner: R, state: Rc<GuardState>) -> Self {
        Guarded { inner, state }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let buf = match self.state.budget.get() {
            None => buf,
            Some(0) if !buf.is_empty() => {
                self.state.tripped.set(true);
                return Err(io::Error::other(
                    "tar extension headers exceed the metadata budget",
                ));
            }
            Some(left) => {
                let cap = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                &mut buf[..cap]
            }
        };
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.state.eof.set(true);
        }
        let n64 = n as u64;
        self.state.pos.set(self.state.pos.get() + n64);
        if let Some(left) = self.state.budget.get() {
            self.state.budget.set(Some(left.saturating_sub(n64)));
        }
        Ok(n)
    }
}
