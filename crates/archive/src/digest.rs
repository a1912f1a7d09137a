//! A reader that hashes what passes through it.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Computes the sha256 of all bytes read through it (diff ids of uncompressed layers, blob digests).
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> DigestReader<R> {
    /// Wraps `inner`; nothing has been hashed yet.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// How many bytes have been read through this reader.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// `"sha256:<hex>"` of everything read so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(read) = buf.get(..n) else {
            return Err(io::Error::other(
                "inner reader returned more bytes than asked for",
            ));
        };
        self.hasher.update(read);
        self.bytes += read.len() as u64;
        Ok(n)
    }
}

impl<R> std::fmt::Debug for DigestReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestReader")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}
