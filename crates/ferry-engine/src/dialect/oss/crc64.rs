//! CRC-64 as OSS computes it for `x-oss-hash-crc64ecma`: the ECMA-182 polynomial, reflected,
//! all ones in and out (the parameters also known as CRC-64/XZ). Computed while a part is read,
//! and combined over parts for the whole object without reading it again.

/// The reflected ECMA-182 polynomial.
const POLY: u64 = 0xC96C_5795_D787_0F42;

const fn table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u64; 256] = table();

/// A running CRC-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc64(u64);

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// The CRC of nothing yet.
    pub fn new() -> Self {
        Self(!0)
    }

    /// Takes more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.0;
        for &byte in bytes {
            crc = TABLE[((crc ^ u64::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    /// The CRC of everything taken.
    pub fn value(self) -> u64 {
        !self.0
    }

    /// The CRC of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut crc = Self::new();
        crc.update(bytes);
        crc.value()
    }
}

/// `vec * mat` over GF(2): the matrix is 64 columns of 64 bits.
fn times(mat: &[u64; 64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 == 1 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn square(mat: &[u64; 64]) -> [u64; 64] {
    let mut out = [0u64; 64];
    for (i, column) in out.iter_mut().enumerate() {
        *column = times(mat, mat[i]);
    }
    out
}

/// The CRC of `a ‖ b` from the CRC of `a`, the CRC of `b` and `b`'s length (zlib's method, for
/// 64 bits): the whole object's CRC from its parts', without reading it again.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    // The operator for one zero bit, then for two, four… zero bits by squaring.
    let mut odd = [0u64; 64];
    odd[0] = POLY;
    for (i, column) in odd.iter_mut().enumerate().skip(1) {
        *column = 1 << (i - 1);
    }
    let mut even = square(&odd); // 2 zero bits
    odd = square(&even); // 4 zero bits
    let (mut crc, mut len) = (crc_a, len_b);
    loop {
        even = square(&odd); // first pass: one zero byte
        if len & 1 == 1 {
            crc = times(&even, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
        odd = square(&even);
        if len & 1 == 1 {
            crc = times(&odd, crc);
        }
        len >>= 1;
        if len == 0 {
            break;
        }
    }
    crc ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_check_value() {
        // CRC-64/XZ's check value, which OSS's CRC-64 (ECMA-182, reflected) shares.
        assert_eq!(Crc64::of(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(Crc64::of(b""), 0);
    }

    #[test]
    fn parts_combine_into_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for cut in [0, 1, 7, 4096, 50_000, 99_999, 100_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                combine(Crc64::of(a), Crc64::of(b), b.len() as u64),
                Crc64::of(&data),
                "cut at {cut}"
            );
        }
        let mut running = Crc64::new();
        for chunk in data.chunks(333) {
            running.update(chunk);
        }
        assert_eq!(running.value(), Crc64::of(&data));
    }
}
