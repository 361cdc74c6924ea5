//! The entropy-coded side of a JPEG scan, for [`super::jpeg_blocks`]: a bit reader that
//! unstuffs `FF 00` and stops at the first marker, and canonical Huffman tables (Annex C)
//! decoded through a lookup of the next [`FAST_BITS`] bits, falling back to walking the code
//! one bit at a time for longer codes and near a marker. Both ways give the same symbol, the
//! same bits consumed and the same stop.

/// Bits looked up at once. Nearly all codes of a photo's tables are this short.
const FAST_BITS: u32 = 9;

/// A canonical Huffman table (JPEG Annex C).
pub(super) struct Huffman {
    max_code: [i32; 17],
    first_code: [i32; 17],
    first_index: [usize; 17],
    values: Vec<u8>,
    /// For each [`FAST_BITS`]-bit prefix, the length and symbol of the code it starts with;
    /// length 0 when that code is longer or invalid (the bitwise walk decides then).
    fast: Vec<(u8, u8)>,
}

impl Huffman {
    pub(super) fn new(counts: &[u8], values: &[u8]) -> Self {
        let mut max_code = [-1i32; 17];
        let mut first_code = [0i32; 17];
        let mut first_index = [0usize; 17];
        let (mut code, mut index) = (0i32, 0usize);
        for len in 1..=16 {
            let n = usize::from(counts[len - 1]);
            first_code[len] = code;
            first_index[len] = index;
            if n > 0 {
                code += n as i32;
                index += n;
                max_code[len] = code - 1;
            }
            code <<= 1;
        }
        let mut table = Self {
            max_code,
            first_code,
            first_index,
            values: values.to_vec(),
            fast: Vec::new(),
        };
        table.fast = table.fast_table();
        table
    }

    /// The lookup: each code of at most [`FAST_BITS`] bits with a symbol fills the entries of
    /// every prefix it starts. Codes of different lengths never share a prefix (each length's
    /// first code lies past the extensions of the shorter ones), so this is what the bitwise
    /// walk finds for each prefix; codes past the values stay 0 and the walk reports them.
    fn fast_table(&self) -> Vec<(u8, u8)> {
        let mut fast = vec![(0u8, 0u8); 1 << FAST_BITS];
        for len in 1..=FAST_BITS as usize {
            let shift = FAST_BITS as usize - len;
            // An overfull table declares codes too large for `len` bits: no prefix holds them.
            let last = self.max_code[len].min((1 << len) - 1);
            for code in self.first_code[len]..=last {
                let index = self.first_index[len] + (code - self.first_code[len]) as usize;
                if let Some(&value) = self.values.get(index) {
                    let start = (code as usize) << shift;
                    fast[start..start + (1 << shift)].fill((len as u8, value));
                }
            }
        }
        fast
    }

    /// The next symbol.
    pub(super) fn decode(&self, bits: &mut Bits) -> Result<u8, Stop> {
        if bits.n < FAST_BITS {
            bits.refill();
        }
        // The bits past the `n` read ones are zero: an entry longer than `n` used some of
        // them, and the bitwise walk reports that stop.
        let (len, value) = self.fast[(bits.buf >> (64 - FAST_BITS)) as usize];
        if len > 0 && u32::from(len) <= bits.n {
            bits.buf <<= len;
            bits.n -= u32::from(len);
            return Ok(value);
        }
        self.decode_bitwise(bits)
    }

    /// The next symbol, one bit at a time.
    fn decode_bitwise(&self, bits: &mut Bits) -> Result<u8, Stop> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | bits.bit()? as i32;
            if code <= self.max_code[len] {
                let i = self.first_index[len] + (code - self.first_code[len]) as usize;
                return self.values.get(i).copied().ok_or(Stop::Corrupt);
            }
        }
        Err(Stop::Corrupt)
    }
}

/// Why walking a scan stopped early.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// A marker (or the end of the data) came where coded data was still needed.
    Marker,
    /// An invalid Huffman code or reference.
    Corrupt,
}

/// Entropy-coded bits, with `FF 00` unstuffed; stops at the first marker. The bits of `buf`
/// past the first `n` are always zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u64,
    n: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    /// The bits of `data` from `pos`.
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            buf: 0,
            n: 0,
            at_marker: false,
        }
    }

    fn refill(&mut self) {
        while self.n <= 56 && !self.at_marker {
            let Some(&b) = self.data.get(self.pos) else {
                self.at_marker = true;
                break;
            };
            if b == 0xFF {
                if self.data.get(self.pos + 1) == Some(&0) {
                    self.pos += 2;
                } else {
                    self.at_marker = true;
                    break;
                }
            } else {
                self.pos += 1;
            }
            self.buf |= u64::from(b) << (56 - self.n);
            self.n += 8;
        }
    }

    fn bit(&mut self) -> Result<u32, Stop> {
        if self.n == 0 {
            self.refill();
            if self.n == 0 {
                return Err(Stop::Marker);
            }
        }
        let b = (self.buf >> 63) as u32;
        self.buf <<= 1;
        self.n -= 1;
        Ok(b)
    }

    /// Drops the next `k` bits (any number: a refinement may skip up to 63 correction bits).
    pub(super) fn skip(&mut self, mut k: u32) -> Result<(), Stop> {
        while k > 32 {
            self.get(32)?;
            k -= 32;
        }
        self.get(k).map(drop)
    }

    /// The next `k` bits (at most 32) as a number, first bit highest.
    pub(super) fn get(&mut self, k: u32) -> Result<u32, Stop> {
        if k == 0 {
            return Ok(0);
        }
        if self.n < k {
            self.refill(); // leaves at least 57 bits unless a marker comes first
            if self.n < k {
                return Err(Stop::Marker);
            }
        }
        let value = (self.buf >> (64 - k)) as u32;
        self.buf <<= k;
        self.n -= k;
        Ok(value)
    }

    /// At the end of a restart interval: drops the padding bits, expects an `RSTn` marker
    /// next and goes on reading after it. False when the next marker is another one or there
    /// is none.
    pub(super) fn restart(&mut self) -> bool {
        let Some(at) = self.next_marker() else {
            return false;
        };
        if !(0xD0..=0xD7).contains(&self.data[at + 1]) {
            return false;
        }
        self.pos = at + 2;
        self.at_marker = false;
        true
    }

    /// Drops the padding bits and returns the position of the next marker (its `FF`).
    pub(super) fn next_marker(&mut self) -> Option<usize> {
        self.buf = 0;
        self.n = 0;
        let mut i = self.pos;
        while i + 1 < self.data.len() {
            if self.data[i] == 0xFF && self.data[i + 1] != 0 && self.data[i + 1] != 0xFF {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: a fixed pseudo-random sequence, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A table as a JPEG might declare it: usually a valid code, sometimes one with too few
    /// values or too many codes of one length.
    fn random_table(rng: &mut Rng) -> Huffman {
        let mut counts = [0u8; 16];
        let mut room = 2u64; // codes still free at the current length
        for count in counts.iter_mut() {
            let take = rng.below(room.min(40) + 1);
            *count = take as u8;
            room = (room - take) * 2;
        }
        if rng.below(8) == 0 {
            counts[rng.below(16) as usize] = rng.below(256) as u8; // overfull
        }
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let short = if rng.below(8) == 0 {
            rng.below(4) as usize
        } else {
            0
        };
        let values: Vec<u8> = (0..total.saturating_sub(short))
            .map(|_| rng.below(256) as u8)
            .collect();
        Huffman::new(&counts, &values)
    }

    /// Entropy-coded bytes with stuffed `FF 00`s, sometimes ending in a marker.
    fn random_data(rng: &mut Rng) -> Vec<u8> {
        let mut data = Vec::new();
        for _ in 0..rng.below(40) {
            let b = rng.below(256) as u8;
            data.push(b);
            if b == 0xFF {
                data.push(if rng.below(6) == 0 { 0xD9 } else { 0 });
            }
        }
        data
    }

    #[test]
    fn a_restart_skips_the_padding_and_its_marker_only() {
        let data = [0xA5, 0xFF, 0x00, 0x3C, 0xFF, 0xD3, 0x41, 0xFF, 0xD9];
        let mut bits = Bits::new(&data, 0);
        bits.skip(12).expect("bits before the marker");
        assert!(bits.restart(), "RST3 follows");
        let byte = (0..8).try_fold(0u32, |acc, _| Ok::<_, Stop>(acc << 1 | bits.bit()?));
        assert_eq!(byte, Ok(0x41), "reading goes on after the marker");
        assert!(!bits.restart(), "EOI is not a restart marker");
        assert!(!Bits::new(&data[..4], 0).restart(), "no marker at all");
    }

    #[test]
    fn the_lookup_decodes_as_the_bitwise_walk() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut symbols = 0;
        for _ in 0..3000 {
            let table = random_table(&mut rng);
            let data = random_data(&mut rng);
            let (mut fast, mut slow) = (Bits::new(&data, 0), Bits::new(&data, 0));
            loop {
                let (a, b) = (table.decode(&mut fast), table.decode_bitwise(&mut slow));
                // The lookup may have read ahead: compare what is left to read.
                fast.refill();
                slow.refill();
                assert_eq!(a, b);
                assert_eq!(fast, slow);
                if a.is_err() {
                    break;
                }
                symbols += 1;
                let extra = rng.below(12) as u32;
                assert_eq!(fast.skip(extra), slow.skip(extra));
            }
        }
        assert!(symbols > 10_000, "only {symbols} symbols decoded");
    }
}
