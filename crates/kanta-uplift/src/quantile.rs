//! Normal and Student t quantiles, from `statrs`.
//!
//! statrs computes the t quantile through the inverse regularised incomplete beta function,
//! t = √(ν(1 − y)/y) with y = I⁻¹_{2p}(ν/2, ½) for p < ½ (Abramowitz & Stegun 26.7.1 inverted).
//! For very many degrees of freedom the incomplete beta with a = ν/2 in the hundreds of
//! thousands is slow and no more accurate than the Cornish–Fisher expansion of the t quantile
//! around the normal one (Abramowitz & Stegun 26.7.5), whose first two terms are already exact to
//! 1e-12 there; a Welch interval on 10⁶ customers lands in that regime.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Degrees of freedom above which the Cornish–Fisher expansion replaces the incomplete beta.
const LARGE_DF: f64 = 1e4;

/// The standard normal quantile Φ⁻¹(p), for p in (0, 1).
pub(crate) fn normal(p: f64) -> f64 {
    // Normal::new(0, 1) cannot fail: the parameters are constants.
    match Normal::new(0.0, 1.0) {
        Ok(standard) => standard.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// The Student t quantile on `df` degrees of freedom (any real df > 0), for p in (0, 1).
///
/// ```text
/// df > 10⁴:  t ≈ z + (z³ + z)/(4ν) + (5z⁵ + 16z³ + 3z)/(96ν²)      (A&S 26.7.5, z = Φ⁻¹(p))
/// otherwise: statrs' StudentsT::inverse_cdf
/// ```
pub(crate) fn students_t(p: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df > LARGE_DF {
        let z = normal(p);
        let (z3, z5) = (z.powi(3), z.powi(5));
        return z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df);
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    #[test]
    fn quantiles_match_scipy() {
        // scipy 1.x: scipy.stats.norm.ppf(0.975), scipy.stats.t.ppf(0.975, df) for each df.
        let cases = [
            (0.975, 1.0, 12.706204736174694),
            (0.975, 2.5, 3.5746548420036817),
            (0.975, 9.0, 2.262157162798205),
            (0.975, 37.4, 2.0254612332283064),
            (0.975, 1000.0, 1.9623390808264083),
            (0.975, 9999.0, 1.960201263621357),
            (0.975, 20000.0, 1.9600826051581348),
            (0.975, 1.5e6, 1.9599655660554616),
            (0.8, 30.0, 0.8537672614712979),
        ];
        for (p, df, expected) in cases {
            assert_relative_eq!(students_t(p, df), expected, max_relative = 1e-9);
        }
        assert_relative_eq!(normal(0.975), 1.959963984540054, max_relative = 1e-12);
        assert_relative_eq!(normal(0.8), 0.8416212335729143, max_relative = 1e-12);
    }
}
