//! CRC-64/XZ, which Alibaba OSS calls `crc64ecma` and returns in `x-oss-hash-crc64ecma` (the
//! ECMA-182 polynomial, reflected, all ones in and out: the SDKs' `crcmod` and Go's
//! `crc64.ECMA` with `^0`). Computed while bodies stream in; an assembled object's CRC is
//! combined from its parts' without reading them again.

use crc_fast::{CrcAlgorithm, Digest};

const ALGORITHM: CrcAlgorithm = CrcAlgorithm::Crc64Xz;

/// A running CRC-64/XZ.
pub(crate) struct Crc64(Digest);

impl Crc64 {
    pub(crate) fn new() -> Self {
        Self(Digest::new(ALGORITHM))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0.finalize()
    }
}

/// The CRC of `bytes` in one go.
#[cfg(test)]
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    crc_fast::checksum(ALGORITHM, bytes)
}

/// The CRC of `a` followed by `b`, from the CRC of each and the length of `b`.
pub(crate) fn combine(a: u64, b: u64, b_len: u64) -> u64 {
    crc_fast::checksum_combine(ALGORITHM, a, b, b_len)
}

/// The CRC of parts laid end to end, from each part's `(crc, size)`; `None` if one is unknown.
pub(crate) fn of_parts(parts: impl IntoIterator<Item = (Option<u64>, u64)>) -> Option<u64> {
    let mut parts = parts.into_iter();
    let (first, _) = parts.next()?;
    parts.try_fold(first?, |crc, (next, size)| Some(combine(crc, next?, size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_check_value_and_combines() {
        // The CRC-64/XZ catalogue check value, and what oss2 (crcmod) gives for b"123456789".
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        let mut running = Crc64::new();
        running.update(b"1234");
        running.update(b"56789");
        assert_eq!(running.finish(), 0x995D_C9BB_DF19_39FA);
        let parts = [b"hello ".as_slice(), b"", b"world, and more"];
        let whole: Vec<u8> = parts.concat();
        let combined = of_parts(parts.iter().map(|p| (Some(checksum(p)), p.len() as u64)));
        assert_eq!(combined, Some(checksum(&whole)));
        assert_eq!(of_parts([(Some(1), 1), (None, 2)]), None);
        assert_eq!(of_parts(std::iter::empty()), None);
    }
}
