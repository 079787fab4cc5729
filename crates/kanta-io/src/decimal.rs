//! Plain decimals (`30.43`, `0`, `661.608333`) parsed from bytes, for the summary reader.
//!
//! `str::parse::<f64>` handles every syntax (signs, exponents, `inf`, long mantissas) and so
//! checks UTF-8 and walks the text more than once; summary files are millions of short plain
//! decimals. A decimal whose digits fit in 2⁵³ with at most 22 of them after the point is
//! `digits / 10^k` with both operands exact in an `f64`, so one correctly rounded division gives
//! the correctly rounded value (Clinger's fast path), the same bits `str::parse` returns.
//! Anything else is left to `str::parse`.

/// Exact powers of ten as `f64` (10²² is the largest that is exact).
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `digits[.digits]` (or `.digits`, or `digits.`) as an `f64` when the fast path is exact;
/// `None` for anything else, which the caller parses with `str::parse`.
#[inline]
pub(crate) fn parse_plain(bytes: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut any_digit = false;
    // Digits after the leading zeros: 19 always fit in a u64, and the 2⁵³ check below decides
    // exactness.
    let mut significant = 0usize;
    let mut decimals = 0usize;
    let mut seen_point = false;
    for &b in bytes {
        match b {
            b'0'..=b'9' => {
                any_digit = true;
                if mantissa != 0 || b != b'0' {
                    if significant == 19 {
                        return None;
                    }
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    significant += 1;
                }
                decimals += usize::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if !any_digit || mantissa > 1 << 53 || decimals >= POWERS.len() {
        return None;
    }
    Some(mantissa as f64 / POWERS[decimals])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_parse(text: &str) -> f64 {
        text.parse().unwrap()
    }

    #[test]
    fn plain_decimals_read_as_str_parse_reads_them() {
        for text in ["0", "7", "30.43", "661.608333", "0.000000", "1.", ".5", "9007199254740992", "0.1"] {
            assert_eq!(parse_plain(text.as_bytes()).map(f64::to_bits), Some(std_parse(text).to_bits()), "{text}");
        }
        // A deterministic walk over decimals of every length the fast path takes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let digits = (state % 17 + 1) as usize;
            let point = (state >> 8) as usize % (digits + 1);
            let number = format!("{:0>width$}", (state >> 12) % 10u64.pow(digits as u32), width = digits);
            let text = format!("{}.{}", &number[..point], &number[point..]);
            if let Some(v) = parse_plain(text.as_bytes()) {
                assert_eq!(v.to_bits(), std_parse(&text).to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn everything_else_is_left_to_the_general_parser() {
        for text in
            ["", ".", "-1", "+1", "1e5", "inf", "NaN", "1.2.3", "1,5", " 1", "9007199254740993", "12345678901234567890"]
        {
            assert_eq!(parse_plain(text.as_bytes()), None, "{text}");
        }
        assert_eq!(parse_plain(b"0.0000000000000000000001"), Some(1e-22), "22 decimals");
        assert_eq!(parse_plain(b"0.00000000000000000000001"), None, "23 decimals");
        assert_eq!(parse_plain(b"0000000000000000000000012.5"), Some(12.5), "leading zeros are not significant");
    }
}
