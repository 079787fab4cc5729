//! Deterministic parallel sums over the distinct tuples of a data set.

use std::ops::Range;

use rayon::prelude::*;

/// Tuples per task. Below two chunks the sum runs on the calling thread: for small data the
/// thread hand-off costs more than the arithmetic.
const CHUNK: usize = 16_384;

/// Σ f(range) over `0..n`, split into fixed chunks evaluated in parallel and added in chunk
/// order, so the result does not depend on the number of threads or on scheduling.
pub(crate) fn sum_chunks<const K: usize>(n: usize, f: impl Fn(Range<usize>) -> [f64; K] + Sync) -> [f64; K] {
    if n <= 2 * CHUNK {
        return f(0..n);
    }
    let parts: Vec<[f64; K]> =
        (0..n.div_ceil(CHUNK)).into_par_iter().map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n))).collect();
    let mut total = [0.0; K];
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_sum_equals_the_serial_sum_in_chunk_order() {
        let n = 5 * CHUNK + 17;
        let f = |r: Range<usize>| {
            let mut s = [0.0, 0.0];
            for i in r {
                s[0] += 1.0 / (i as f64 + 1.0);
                s[1] += 1.0;
            }
            s
        };
        let got = sum_chunks(n, f);
        let mut want = [0.0, 0.0];
        for c in 0..n.div_ceil(CHUNK) {
            let part = f(c * CHUNK..((c + 1) * CHUNK).min(n));
            want[0] += part[0];
            want[1] += part[1];
        }
        assert_eq!(got, want);
        assert_eq!(got[1], n as f64);
    }
}
