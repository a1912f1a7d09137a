//! Compression sniffing and transparent decompression of layer blobs.

use std::fmt;
use std::io::{self, BufRead, Read};

use crate::ArchiveError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (RFC 1952), possibly several members back to back.
    Gzip,
    /// zstd (RFC 8878), possibly several frames back to back.
    Zstd,
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Classifies the first bytes of a stream. Anything that is neither gzip nor zstd is taken as a plain
/// tar (which the tar parser then validates).
pub(crate) fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) || is_zstd_skippable(head) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// zstd skippable frames: magic 0x184D2A50..=0x184D2A5F, little endian.
fn is_zstd_skippable(head: &[u8]) -> bool {
    matches!(head, [b0, 0x2a, 0x4d, 0x18, ..] if b0 & 0xf0 == 0x50)
}

/// Sniffs the magic bytes of `reader` without consuming them and returns the detected compression.
///
/// Only what the reader already has buffered (one `fill_buf`) is looked at; any `BufReader` holds at
/// least the four bytes needed unless the stream itself is shorter.
pub fn detect(reader: &mut impl BufRead) -> Result<Compression, ArchiveError> {
    loop {
        match reader.fill_buf() {
            Ok(head) => return Ok(sniff(head)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ArchiveError::Read { source }),
        }
    }
}

/// Wraps a (possibly compressed) layer stream into a reader of the plain tar stream.
///
/// Decompression errors (bad magic past the header, truncated input, bad checksums) surface as
/// `io::Error`s from the returned reader; [`apply_layer`](crate::apply_layer) reports them as
/// [`ArchiveError::Corrupt`].
pub fn decompress<'a, R: BufRead + Send + 'a>(
    mut reader: R,
) -> Result<Box<dyn Read + Send + 'a>, ArchiveError> {
    Ok(match detect(&mut reader)? {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|source| ArchiveError::Read { source })?,
        ),
    })
}
