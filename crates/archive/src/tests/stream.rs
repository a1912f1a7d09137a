//! Compression detection, decompression and digesting.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::*;
use crate::{decompress, detect, Compression, DigestReader};

fn sample_tar() -> Vec<u8> {
    let mut t = TarBuf::new();
    t.dir("etc/").file("etc/hostname", b"berth\n");
    t.finish()
}

#[test]
fn detects_gzip_zstd_and_plain_without_consuming() {
    let tar = sample_tar();
    let gz = gzip(&tar);
    let zst = zstd::encode_all(&tar[..], 3).expect("zstd");
    for (bytes, expect) in [
        (&tar[..], Compression::None),
        (&gz[..], Compression::Gzip),
        (&zst[..], Compression::Zstd),
        (&b""[..], Compression::None),
        (&[0x1f][..], Compression::None),
        (&[0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0][..], Compression::Zstd),
    ] {
        let mut reader = BufReader::new(bytes);
        assert_eq!(detect(&mut reader).expect("detect"), expect);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).expect("read");
        assert_eq!(all, bytes, "detect must not consume");
    }
}

#[test]
fn decompress_yields_the_plain_tar() {
    let tar = sample_tar();
    let gz = gzip(&tar);
    let zst = zstd::encode_all(&tar[..], 3).expect("zstd");
    // two gzip members back to back, as pigz and some registries produce
    let half = tar.len() / 2;
    let mut multi = gzip(&tar[..half]);
    multi.extend(gzip(&tar[half..]));
    for blob in [&tar, &gz, &zst, &multi] {
        let mut out = Vec::new();
        decompress(BufReader::new(&blob[..]))
            .expect("decompress")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, tar);
    }
}

#[test]
fn decompressed_layer_applies() {
    let tar = sample_tar();
    for blob in [gzip(&tar), zstd::encode_all(&tar[..], 3).expect("zstd")] {
        let dest = tempfile::tempdir().expect("tempdir");
        let reader = decompress(BufReader::new(&blob[..])).expect("decompress");
        crate::apply_layer(reader, dest.path(), &Limits::default()).expect("apply");
        assert_eq!(
            fs::read(dest.path().join("etc/hostname")).expect("read"),
            b"berth\n"
        );
    }
}

#[test]
fn digest_reader_hashes_a_known_string() {
    let mut r = DigestReader::new(&b"hello world"[..]);
    assert_eq!(
        r.digest(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let mut out = String::new();
    r.read_to_string(&mut out).expect("read");
    assert_eq!(out, "hello world");
    assert_eq!(r.bytes_read(), 11);
    assert_eq!(
        r.digest(),
        "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert!(r.into_inner().is_empty());
}

#[test]
fn apply_reads_the_stream_to_its_end() {
    // GNU tar pads archives to 10 KiB records: the diff id covers those bytes too.
    let mut tar = sample_tar();
    tar.resize(10240, 0);
    let compressed = gzip(&tar);
    let dest = tempfile::tempdir().expect("tempdir");
    let mut blob = DigestReader::new(&compressed[..]);
    {
        let mut diff =
            DigestReader::new(decompress(BufReader::new(&mut blob)).expect("decompress"));
        crate::apply_layer(&mut diff, dest.path(), &Limits::default()).expect("apply");
        assert_eq!(diff.bytes_read(), 10240);
        assert_eq!(
            diff.digest(),
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
    }
    assert_eq!(blob.bytes_read(), compressed.len() as u64);
    assert_eq!(
        blob.digest(),
        format!("sha256:{}", hex::encode(Sha256::digest(&compressed)))
    );
}
