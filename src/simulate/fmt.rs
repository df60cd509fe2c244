//! printf-compatible number formatting straight into byte buffers.
//!
//! The dumpers print with `%.Nf`, `%d` and `%.0f`; the simulator must produce the same characters.
//! Going through `format!` for every one of the ~20 million numbers of a full day costs more than
//! the rest of the simulation, so the common case is done with integer arithmetic and only the
//! rare values where that could round differently fall back to the standard library (whose fixed
//! precision output is correctly rounded, ties to even, like glibc and the current MSVC runtime).

use std::io::Write as _;

const POW10_F: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const POW10_U: [u64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Largest scaled magnitude for the fast path: below 2^46 one rounding of the product is at most
/// 2^-7 away from the exact decimal value, well inside the 0.01 margin kept around ties.
const FAST_LIMIT: f64 = 70_368_744_177_664.0;

/// Appends `x` formatted like C's `%.{decimals}f`.
pub(crate) fn push_fixed(buf: &mut Vec<u8>, x: f64, decimals: usize) {
    if x.is_nan() {
        buf.extend_from_slice(if x.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if x.is_infinite() {
        buf.extend_from_slice(if x < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    if decimals < POW10_F.len() {
        let scaled = x.abs() * POW10_F[decimals];
        if scaled < FAST_LIMIT {
            let floor = scaled.floor();
            let frac = scaled - floor;
            if (frac - 0.5).abs() > 0.01 {
                let mut n = floor as u64;
                if frac > 0.5 {
                    n += 1;
                }
                if x.is_sign_negative() {
                    buf.push(b'-');
                }
                let p = POW10_U[decimals];
                push_u64(buf, n / p);
                if decimals > 0 {
                    buf.push(b'.');
                    push_padded(buf, n % p, decimals);
                }
                return;
            }
        }
    }
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{x:.decimals$}");
}

/// Appends an unsigned integer in decimal.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut pos = digits.len();
    loop {
        pos -= 1;
        digits[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[pos..]);
}

/// Appends a signed integer in decimal (`%d`, `%lld`, and `%.0f` of an integral value).
pub(crate) fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_u64(buf, n.unsigned_abs());
}

/// Appends `n` left-padded with zeros to `width` digits.
fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut pos = digits.len();
    let mut rest = n;
    while rest > 0 {
        pos -= 1;
        digits[pos] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = digits.len().saturating_sub(width).min(pos);
    buf.extend_from_slice(&digits[start..]);
}

/// Appends a string verbatim (the dumpers insert strings with `%s`, unescaped).
pub(crate) fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(x: f64, d: usize) -> String {
        let mut buf = Vec::new();
        push_fixed(&mut buf, x, d);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn matches_the_standard_formatter() {
        let samples = [
            0.0,
            1.0,
            6500.25,
            6487.75,
            45919.646527777,
            45919.5633378,
            0.107021,
            -2314.0,
            2301.3,
            15.42,
            0.0000004,
            0.0000005,
            0.0000015,
            123456.999999999,
            -0.5,
            9.999999,
            99999.99999999,
        ];
        for &x in &samples {
            for d in [0usize, 1, 2, 6, 8, 9] {
                assert_eq!(fixed(x, d), format!("{x:.d$}"), "{x} with {d} decimals");
            }
        }
    }

    #[test]
    fn pseudo_random_values_agree() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = (state % 10_000_000_000) as f64 / 997.0 - 5_000_000.0;
            for d in [0usize, 1, 2, 6, 8, 9] {
                assert_eq!(fixed(x, d), format!("{x:.d$}"), "{x} with {d} decimals");
            }
        }
    }

    #[test]
    fn ties_round_to_even_like_glibc() {
        assert_eq!(fixed(6487.75, 1), "6487.8");
        assert_eq!(fixed(6487.25, 1), "6487.2");
        assert_eq!(fixed(2.5, 0), "2");
        assert_eq!(fixed(f64::NAN, 6), "nan");
        assert_eq!(fixed(f64::INFINITY, 6), "inf");
    }

    #[test]
    fn integers() {
        let mut buf = Vec::new();
        push_i64(&mut buf, -2314);
        buf.push(b' ');
        push_i64(&mut buf, i64::MIN);
        buf.push(b' ');
        push_u64(&mut buf, 0);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "-2314 -9223372036854775808 0"
        );
    }
}
