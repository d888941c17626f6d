//! Descriptive statistics for repeated measurements: pure functions, no I/O.
//!
//! Container timings are few (10–30 reps), skewed and occasionally hit by a one-off stall, so
//! every summary carries robust figures (median, MAD) and flags outliers instead of dropping
//! them: the caller decides what to do with an outlier, and the report can say which rep it was.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator); 0 when n < 2.
    pub sd: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// 95th percentile, linear interpolation between order statistics (see [`percentile`]).
    pub p95: f64,
    /// Median absolute deviation from the median, unscaled (not multiplied by 1.4826).
    pub mad: f64,
    /// Indices into the input of the outliers (modified z-score, see `outliers` in this module).
    pub outliers: Vec<usize>,
}

/// Summarises a sample. `None` when it is empty or holds a NaN or infinity: a non-finite
/// measurement means something upstream failed, and a mean of it would hide that.
pub fn summarize(xs: &[f64]) -> Option<Summary> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let sorted = sorted(xs);
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    // Two passes (mean first) rather than Σx² − n·x̄²: startup times in ns are large numbers
    // with small spread, exactly where the one-pass formula cancels catastrophically.
    let sd = if n < 2 {
        0.0
    } else {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let median = median_sorted(&sorted);
    let mad = mad_about(xs, median);
    Some(Summary {
        n,
        mean,
        sd,
        median,
        min: sorted[0],
        max: sorted[n - 1],
        p95: percentile_sorted(&sorted, 95.0),
        mad,
        outliers: outliers(xs, median, mad),
    })
}

/// Median; NaN for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    median_sorted(&sorted(xs))
}

/// The `p`-th percentile (`p` in 0..=100, clamped), interpolating linearly between the two
/// nearest order statistics at rank (n − 1)·p/100 — Hyndman & Fan type 7, the default of R,
/// NumPy and spreadsheets, so figures match what readers recompute from the CSV. NaN for an
/// empty slice.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    percentile_sorted(&sorted(xs), p)
}

/// Modified z-score above which a value is an outlier (Iglewicz & Hoaglin, 1993).
const Z_LIMIT: f64 = 3.5;
/// 0.6745 is the 0.75 quantile of the standard normal: it makes MAD estimate σ for normal data.
const MAD_TO_Z: f64 = 0.6745;
/// √(2/π): mean absolute deviation of a normal is 0.7979·σ.
const MEANAD_TO_Z: f64 = 0.7979;
/// Values this close to the median (relative) are never outliers, whatever the spread says.
const MIN_RELATIVE_DEVIATION: f64 = 0.01;

/// Indices of outliers by the modified z-score of Iglewicz & Hoaglin ("How to Detect and
/// Handle Outliers", ASQC Basic References in Quality Control 16, 1993):
/// `M = 0.6745·(x − median)/MAD`, outlier when `|M| > 3.5`.
///
/// Two guards keep it sane on the near-constant samples that benchmarks produce:
/// - When MAD = 0 (more than half the values identical) the score is undefined, so it falls back
///   to the mean absolute deviation about the median, `M = 0.7979·(x − median)/MeanAD` — the
///   substitution IBM SPSS uses for the same estimator. If that is 0 too, every value equals
///   the median and nothing is flagged.
/// - A value within 1 % of the median is never flagged: with a tiny spread (a timer's jitter on
///   identical runs) any deviation yields a large score, yet it means nothing physically.
fn outliers(xs: &[f64], median: f64, mad: f64) -> Vec<usize> {
    let (scale, spread) = if mad > 0.0 {
        (MAD_TO_Z, mad)
    } else {
        let mean_ad = xs.iter().map(|x| (x - median).abs()).sum::<f64>() / xs.len() as f64;
        (MEANAD_TO_Z, mean_ad)
    };
    if spread <= 0.0 {
        return Vec::new();
    }
    let floor = MIN_RELATIVE_DEVIATION * median.abs();
    xs.iter()
        .enumerate()
        .filter(|&(_, &x)| {
            let dev = (x - median).abs();
            dev > floor && scale * dev / spread > Z_LIMIT
        })
        .map(|(i, _)| i)
        .collect()
}

fn mad_about(xs: &[f64], center: f64) -> f64 {
    let devs: Vec<f64> = xs.iter().map(|x| (x - center).abs()).collect();
    median(&devs)
}

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn median_sorted(s: &[f64]) -> f64 {
    percentile_sorted(s, 50.0)
}

fn percentile_sorted(s: &[f64], p: f64) -> f64 {
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = (s.len() - 1) as f64 * p.clamp(0.0, 100.0) / 100.0;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    s[lo] + (rank - lo as f64) * (s[hi] - s[lo])
}

/// A derived figure with its one-σ uncertainty: `value ± uncertainty`. The uncertainty is
/// None (null in JSON) when a side has a single rep: no spread was measured, so none is known.
#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct Ratio {
    pub value: f64,
    pub uncertainty: Option<f64>,
}

impl Ratio {
    /// `value ± u` with `f` formatting both numbers; "± unknown" when one rep leaves no spread
    /// to propagate (a "± 0" would read as exact).
    pub fn show(&self, f: impl Fn(f64) -> String) -> String {
        match self.uncertainty {
            Some(u) => format!("{} ± {}", f(self.value), f(u)),
            None => format!("{} ± unknown (1 rep)", f(self.value)),
        }
    }
}

/// Ratio of means, `num.mean / den.mean`, with its uncertainty propagated to first order from
/// the standard errors of both means (σ/√n), relative errors added in quadrature — i.e. the two
/// samples are taken as independent. Written in absolute form,
/// `u = √((se_n/d)² + (n·se_d/d²)²)`, so a zero numerator still gets a finite uncertainty.
/// A zero denominator mean gives an infinite or NaN value, which callers must not print as a
/// number.
pub fn ratio(num: &Summary, den: &Summary) -> Ratio {
    let (n, d) = (num.mean, den.mean);
    let uncertainty = (num.n >= 2 && den.n >= 2)
        .then(|| ((std_err(num) / d).powi(2) + (n * std_err(den) / (d * d)).powi(2)).sqrt());
    Ratio {
        value: n / d,
        uncertainty,
    }
}

/// Standard error of the mean, σ/√n.
fn std_err(s: &Summary) -> f64 {
    s.sd / (s.n as f64).sqrt()
}

/// Whether two samples' means differ by more than chance: Welch's t test at 95 % (two-sided),
/// which does not assume equal variances — a container runtime's spread is rarely bare's.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// mean(a) − mean(b).
    pub diff: f64,
    /// Standard error of the difference, √(σa²/na + σb²/nb).
    pub std_err: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub dof: f64,
    /// Half-width of the 95 % interval of the difference: t(0.975, dof) · std_err.
    pub half_width: f64,
    /// |diff| > half_width: the difference is resolved.
    pub resolved: bool,
}

/// Welch's comparison of `a` against `b`; None when either has fewer than 2 reps (no spread
/// measured, so no noise known).
pub fn welch(a: &Summary, b: &Summary) -> Option<Welch> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.sd.powi(2) / a.n as f64, b.sd.powi(2) / b.n as f64);
    let std_err = (va + vb).sqrt();
    let diff = a.mean - b.mean;
    let dof = if va + vb == 0.0 {
        f64::INFINITY
    } else {
        (va + vb).powi(2) / (va.powi(2) / (a.n - 1) as f64 + vb.powi(2) / (b.n - 1) as f64)
    };
    let half_width = t975(dof) * std_err;
    Some(Welch { diff, std_err, dof, half_width, resolved: diff.abs() > half_width })
}

/// Reps per side that would resolve a difference of this size at these spreads (the smallest
/// n whose Welch interval is narrower than the difference): None when the means are equal, or
/// past a million reps, which is no advice.
pub fn reps_to_resolve(a: &Summary, b: &Summary) -> Option<u64> {
    let diff = (a.mean - b.mean).abs();
    let (va, vb) = (a.sd.powi(2), b.sd.powi(2));
    (2..=1_000_000u64).find(|&n| {
        let n = n as f64;
        let se2 = (va + vb) / n;
        let dof = if se2 == 0.0 { f64::INFINITY } else { se2.powi(2) / ((va / n).powi(2) / (n - 1.0) + (vb / n).powi(2) / (n - 1.0)) };
        diff > t975(dof) * se2.sqrt()
    })
}

/// t(0.975, dof), two-sided 95 %, from the standard table; a fractional dof takes the entry
/// at or below it, which errs toward "not resolved".
fn t975(dof: f64) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        d if d < 1.0 => f64::INFINITY,
        d if d < 31.0 => T[d as usize - 1],
        d if d < 60.0 => 2.021,
        d if d < 120.0 => 2.000,
        d if d < f64::INFINITY => 1.980,
        _ => 1.960,
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination; 1 when every y is equal (the flat line fits exactly).
    pub r2: f64,
}

/// Ordinary least-squares line `y = slope·x + intercept`. `None` with fewer than two points,
/// mismatched lengths, non-finite input, or all xs equal (the slope is undefined).
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> Option<LinearFit> {
    if xs.len() != ys.len()
        || xs.len() < 2
        || xs.iter().chain(ys).any(|v| !v.is_finite())
        || xs.iter().all(|&x| x == xs[0])
    {
        return None;
    }
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (&x, &y) in xs.iter().zip(ys) {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
        syy += (y - my) * (y - my);
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_res: f64 = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| (y - (slope * x + intercept)).powi(2))
        .sum();
    let r2 = if syy == 0.0 { 1.0 } else { 1.0 - ss_res / syy };
    Some(LinearFit {
        slope,
        intercept,
        r2,
    })
}

/// Where B stands against A, judged from a 95% interval of the ratio B/A.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The whole interval is below 1.
    Lower,
    /// The whole interval is above 1.
    Higher,
    /// The interval contains 1: what was measured cannot tell the two apart.
    NoClearDifference,
}

#[derive(Serialize, Clone, Copy, Debug)]
pub struct RatioInterval {
    /// median(B) / median(A).
    pub ratio: f64,
    /// The 2.5th and 97.5th percentiles of the bootstrapped ratio.
    pub low: f64,
    pub high: f64,
}

impl RatioInterval {
    /// Like [`change`](Self::change), but a ratio within `noise` of 1 (0.05: between 1/1.05 and
    /// 1.05) is no clear difference even when the interval excludes 1 — the threshold
    /// criterion.rs applies for the same reason: two runs of one setting on one machine drift
    /// by a few percent (caches, clock speed, other load), which no resampling of reps sees.
    pub fn change_beyond(&self, noise: f64) -> Change {
        if self.ratio < 1.0 + noise && self.ratio > 1.0 / (1.0 + noise) {
            Change::NoClearDifference
        } else {
            self.change()
        }
    }

    pub fn change(&self) -> Change {
        if self.high < 1.0 {
            Change::Lower
        } else if self.low > 1.0 {
            Change::Higher
        } else {
            Change::NoClearDifference
        }
    }
}

/// Reps per half below which a run's drift is not measured: a median of fewer than 3 reps is
/// the mean of two or a single rep, which one slow rep moves as far as it likes.
pub const DRIFT_MIN_HALF: usize = 3;

/// How far a run's own median moved while it ran, in the reps' unit: the reps, in the order
/// they were taken, are cut into an earlier and a later half (the middle rep of an odd count
/// belongs to neither) and the drift is |median(later) − median(earlier)|. The same setting on
/// the same host moves that much from one moment to the next, which a bootstrap over the reps
/// (each rep drawn as if independent of when it ran) does not see. `None` with fewer than
/// [`DRIFT_MIN_HALF`] reps per half or a non-finite rep.
pub fn halves_drift(xs: &[f64]) -> Option<f64> {
    let half = xs.len() / 2;
    if half < DRIFT_MIN_HALF || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Some((median(&xs[xs.len() - half..]) - median(&xs[..half])).abs())
}

/// Resamples per interval: enough for stable 2.5/97.5 percentiles (Efron & Tibshirani suggest
/// ≥ 1000 for percentile intervals), cheap for the few dozen figures a comparison has.
const RESAMPLES: usize = 4000;
/// Fixed, so a comparison of the same runs prints the same intervals every time.
pub const BOOTSTRAP_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// The ratio of medians median(B)/median(A) with a percentile-bootstrap 95% interval: A and B
/// are resampled independently (with replacement, each at its own size) from the raw reps.
/// `None` with fewer than two reps on either side (no spread, no interval), a non-finite
/// rep, or a median of A that is not positive (a ratio to zero says nothing). Resamples whose
/// median of A is 0 count as an infinite ratio, which only widens the interval.
pub fn bootstrap_ratio(a: &[f64], b: &[f64], seed: u64) -> Option<RatioInterval> {
    if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let (ma, mb) = (median(a), median(b));
    if ma <= 0.0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let (mut ba, mut bb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let (ra, rb) = (rng.resampled_median(a, &mut ba), rng.resampled_median(b, &mut bb));
            if ra > 0.0 {
                rb / ra
            } else {
                f64::INFINITY
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    // Interpolating towards an infinite ratio gives NaN (∞ − ∞, or ∞·0): the nearest order
    // statistic is the honest answer there.
    let pick = |p: f64| {
        let v = percentile_sorted(&ratios, p);
        if v.is_nan() {
            ratios[((ratios.len() - 1) as f64 * p / 100.0).round() as usize]
        } else {
            v
        }
    };
    Some(RatioInterval {
        ratio: mb / ma,
        low: pick(2.5),
        high: pick(97.5),
    })
}

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", 2014):
/// a tiny, well-mixed generator, enough for resampling indices and reproducible by seed.
/// Half the width of the percentile-bootstrap 95% interval of the median of `xs`: how
/// precisely its reps pin the median down. `None` with fewer than two reps or a non-finite one.
pub fn median_half_width(xs: &[f64], seed: u64) -> Option<f64> {
    if xs.len() < 2 || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut buf = Vec::with_capacity(xs.len());
    let mut medians: Vec<f64> = (0..RESAMPLES).map(|_| rng.resampled_median(xs, &mut buf)).collect();
    medians.sort_by(f64::total_cmp);
    Some((percentile_sorted(&medians, 97.5) - percentile_sorted(&medians, 2.5)) / 2.0)
}

struct SplitMix64(u64);

impl SplitMix64 {
    /// The median of `xs` resampled with replacement at its own size (`buf` is scratch).
    fn resampled_median(&mut self, xs: &[f64], buf: &mut Vec<f64>) -> f64 {
        buf.clear();
        buf.extend((0..xs.len()).map(|_| xs[self.below(xs.len())]));
        buf.sort_by(f64::total_cmp);
        median_sorted(buf)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n ≤ a few thousand: the modulo bias, < n/2⁶⁴, is immaterial).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outliers(xs: &[f64]) -> Vec<usize> {
        summarize(xs).unwrap().outliers
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn median_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!(close(percentile(&xs, 95.0), 95.05));
        assert_eq!(percentile(&xs, 0.0), 1.0);
        assert_eq!(percentile(&xs, 100.0), 100.0);
        assert!(close(percentile(&xs, 50.0), 50.5));
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0], 25.0), 1.75));
        assert_eq!(percentile(&[5.0], 95.0), 5.0);
        assert_eq!(percentile(&[1.0, 2.0], 250.0), 2.0);
    }

    #[test]
    fn summary_of_known_set() {
        // Classic example: population σ is 2, sample σ is √(32/7).
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = summarize(&xs).unwrap();
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.sd, (32.0f64 / 7.0).sqrt()));
        assert!(close(s.median, 4.5));
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert!(close(s.p95, 8.3));
        // |x − 4.5| = 2.5 .5 .5 .5 .5 .5 2.5 4.5 → median 0.5
        assert!(close(s.mad, 0.5));
        // 9 scores 0.6745·4.5/0.5 ≈ 6.1; 2 and 7 score ≈ 3.4, just inside.
        assert_eq!(s.outliers, vec![7]);
    }

    #[test]
    fn summary_edge_cases() {
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
        assert!(summarize(&[1.0, f64::INFINITY]).is_none());
        let one = summarize(&[42.0]).unwrap();
        assert_eq!(
            (one.sd, one.median, one.p95, one.mad),
            (0.0, 42.0, 42.0, 0.0)
        );
        assert!(one.outliers.is_empty());
    }

    #[test]
    fn sd_stable_for_large_offsets() {
        let xs = [1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0];
        assert!(close(summarize(&xs).unwrap().sd, 1.0));
    }

    #[test]
    fn outlier_when_mad_is_zero() {
        assert_eq!(outliers(&[10.0, 10.0, 10.0, 10.0, 50.0]), vec![4]);
        assert_eq!(outliers(&[50.0, 10.0, 10.0, 10.0, 10.0, 9.0]), vec![0]);
    }

    #[test]
    fn outlier_with_normal_spread() {
        let xs = [
            100.0, 102.0, 98.0, 101.0, 99.0, 103.0, 97.0, 100.0, 250.0, 40.0,
        ];
        assert_eq!(outliers(&xs), vec![8, 9]);
    }

    #[test]
    fn no_outliers_in_identical_data() {
        assert!(outliers(&[3.3; 20]).is_empty());
        assert!(outliers(&[0.0; 5]).is_empty());
    }

    #[test]
    fn no_outliers_for_tiny_relative_jitter() {
        // MAD = 0 and the fallback score is huge, but 1e-7 relative is timer noise.
        assert!(outliers(&[1.0, 1.0, 1.0, 1.0 + 1e-7, 1.0]).is_empty());
        // MAD > 0 but minute: 100.5 scores far above 3.5, yet is within 1 % of the median.
        assert!(outliers(&[100.0, 100.0001, 99.9999, 100.0, 100.00002, 100.5]).is_empty());
    }

    #[test]
    fn no_outliers_in_tiny_samples() {
        assert!(outliers(&[1.0, 1000.0]).is_empty());
        assert!(outliers(&[5.0]).is_empty());
    }

    #[test]
    fn ratio_propagates_standard_errors() {
        // Means 200 and 100 with equal relative standard errors r: the ratio's is r·√2.
        let num = summarize(&[190.0, 210.0, 190.0, 210.0]).unwrap();
        let den = summarize(&[95.0, 105.0, 95.0, 105.0]).unwrap();
        let se_num = num.sd / 2.0;
        let r = ratio(&num, &den);
        assert!(close(r.value, 2.0));
        let rel = se_num / 200.0;
        let u = r.uncertainty.unwrap();
        assert!(close(u, 2.0 * rel * 2f64.sqrt()));
        assert!(u > 0.0 && u < r.value);
    }

    #[test]
    fn ratio_exact_and_zero_numerator() {
        let a = summarize(&[3.0, 3.0]).unwrap();
        let b = summarize(&[1.5, 1.5]).unwrap();
        let r = ratio(&a, &b);
        assert_eq!((r.value, r.uncertainty), (2.0, Some(0.0)));
        let z = summarize(&[-1.0, 1.0]).unwrap();
        let r = ratio(&z, &b);
        assert_eq!(r.value, 0.0);
        assert!(r.uncertainty.is_some_and(|u| u.is_finite() && u > 0.0));
        // n = 1: no spread measured, so the uncertainty is unknown, not zero.
        let single = summarize(&[4.0]).unwrap();
        assert_eq!(ratio(&single, &b).uncertainty, None);
        assert_eq!(ratio(&single, &b).show(|v| format!("{v:.1}")), "2.7 ± unknown (1 rep)");
        assert_eq!(r.show(|v| format!("{v:.1}")), "0.0 ± 0.7");
    }

    #[test]
    fn welch_resolves_what_two_sigma_of_one_rep_calls_noise() {
        // σ ≈ 22 on both sides, means 30 apart: inside ±2σ of a single rep, yet with 10 reps
        // each the standard error of the difference is 9.9 and the difference is resolved.
        let a: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { 1051.0 } else { 1009.0 }).collect();
        let b: Vec<f64> = a.iter().map(|x| x - 30.0).collect();
        let (sa, sb) = (summarize(&a).unwrap(), summarize(&b).unwrap());
        assert!((sa.sd - 22.14).abs() < 0.01 && 30.0 < 2.0 * sa.sd);
        let w = welch(&sa, &sb).unwrap();
        assert!(close(w.diff, 30.0) && close(w.dof, 18.0) && w.resolved, "{w:?}");
        assert!(close(w.half_width, 2.101 * w.std_err));
        // Three reps each: the same difference is not resolved, and 7 reps each would (at 6,
        // t(10) = 2.228 keeps the interval at ±31.2).
        let (a3, b3) = (summarize(&a[..3]).unwrap(), summarize(&b[..3]).unwrap());
        assert!(!welch(&a3, &b3).unwrap().resolved);
        assert_eq!(reps_to_resolve(&a3, &b3), Some(7));
        assert_eq!(reps_to_resolve(&a3, &a3), None);
        assert_eq!(welch(&summarize(&[1.0]).unwrap(), &sb), None);
    }

    #[test]
    fn fit_of_exact_line() {
        let xs = [10.0, 20.0, 50.0];
        let ys: Vec<f64> = xs.iter().map(|x| 0.2 * x + 1.5).collect();
        let f = linear_fit(&xs, &ys).unwrap();
        assert!(close(f.slope, 0.2));
        assert!(close(f.intercept, 1.5));
        assert!(close(f.r2, 1.0));
    }

    #[test]
    fn fit_r2_of_noisy_data() {
        // Sxx = 5, Sxy = 3, Syy = 5: slope 0.6, intercept 1, r² = Sxy²/(Sxx·Syy) = 0.36.
        let f = linear_fit(&[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 4.0, 3.0]).unwrap();
        assert!(close(f.slope, 0.6));
        assert!(close(f.intercept, 1.0));
        assert!(close(f.r2, 0.36));
    }

    #[test]
    fn fit_rejects_degenerate_input() {
        assert!(linear_fit(&[1.0], &[1.0]).is_none());
        assert!(linear_fit(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]).is_none());
        assert!(linear_fit(&[1.0, 2.0], &[1.0]).is_none());
        assert!(linear_fit(&[1.0, f64::NAN], &[1.0, 2.0]).is_none());
        let flat = linear_fit(&[1.0, 2.0, 3.0], &[4.0, 4.0, 4.0]).unwrap();
        assert_eq!((flat.slope, flat.intercept, flat.r2), (0.0, 4.0, 1.0));
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_ratio() {
        let a = [10.0, 11.0, 9.5, 10.2, 10.8, 9.9, 10.4, 10.1, 9.7, 10.6];
        let b: Vec<f64> = a.iter().map(|x| x * 1.5).collect();
        let r = bootstrap_ratio(&a, &b, BOOTSTRAP_SEED).unwrap();
        let again = bootstrap_ratio(&a, &b, BOOTSTRAP_SEED).unwrap();
        assert_eq!((r.ratio, r.low, r.high), (again.ratio, again.low, again.high));
        assert!(close(r.ratio, median(&b) / median(&a)));
        assert!(close(r.ratio, 1.5));
        assert!(r.low <= r.ratio && r.ratio <= r.high, "{r:?}");
        assert!(r.low > 1.3 && r.high < 1.7, "{r:?}");
        assert_eq!(r.change(), Change::Higher);
        let other_seed = bootstrap_ratio(&a, &b, 1).unwrap();
        assert!((other_seed.low - r.low).abs() < 0.1);
    }

    #[test]
    fn bootstrap_of_overlapping_samples_contains_one() {
        // The same spread, shuffled: the medians are equal and any interval must hold 1.
        let a = [5.0, 7.0, 6.0, 9.0, 4.0, 8.0, 6.5, 5.5];
        let b = [8.0, 4.0, 6.5, 5.0, 9.0, 6.0, 5.5, 7.0];
        let r = bootstrap_ratio(&a, &b, BOOTSTRAP_SEED).unwrap();
        assert!(close(r.ratio, 1.0));
        assert!(r.low < 1.0 && r.high > 1.0, "{r:?}");
        assert_eq!(r.change(), Change::NoClearDifference);
        // Faster: B's every rep below A's.
        let fast: Vec<f64> = a.iter().map(|x| x * 0.5).collect();
        assert_eq!(bootstrap_ratio(&a, &fast, BOOTSTRAP_SEED).unwrap().change(), Change::Lower);
    }

    #[test]
    fn halves_drift_compares_the_earlier_half_with_the_later() {
        // Tight within each half, a step between them: the drift is the step, in ms.
        assert!(close(halves_drift(&[10.0, 10.1, 9.9, 12.0, 12.1, 11.9]).unwrap(), 2.0));
        // Slow and fast reps spread over both halves: next to no drift.
        assert!(close(halves_drift(&[10.0, 12.0, 11.0, 12.0, 10.0, 11.1]).unwrap(), 0.1));
        // The middle rep of an odd count belongs to neither half.
        assert!(close(halves_drift(&[1.0, 1.0, 1.0, 100.0, 2.0, 2.0, 2.0]).unwrap(), 1.0));
        // Too few reps to split into halves of three: not measured, not zero.
        assert_eq!(halves_drift(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        assert_eq!(halves_drift(&[1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN]), None);
    }

    #[test]
    fn median_half_width_grows_with_the_spread() {
        let tight = median_half_width(&[10.0, 10.1, 9.9, 10.0, 10.05, 9.95], BOOTSTRAP_SEED).unwrap();
        let loose = median_half_width(&[5.0, 15.0, 8.0, 12.0, 10.0, 20.0], BOOTSTRAP_SEED).unwrap();
        assert!(tight > 0.0 && tight < 0.1, "{tight}");
        assert!(loose > 1.0, "{loose}");
        assert_eq!(median_half_width(&[1.0], BOOTSTRAP_SEED), None);
        assert_eq!(median_half_width(&[1.0, f64::NAN], BOOTSTRAP_SEED), None);
    }

    #[test]
    fn bootstrap_refuses_what_it_cannot_judge() {
        assert!(bootstrap_ratio(&[1.0], &[1.0, 2.0], BOOTSTRAP_SEED).is_none());
        assert!(bootstrap_ratio(&[1.0, 2.0], &[], BOOTSTRAP_SEED).is_none());
        assert!(bootstrap_ratio(&[0.0, 0.0, 0.0], &[1.0, 2.0], BOOTSTRAP_SEED).is_none());
        assert!(bootstrap_ratio(&[1.0, f64::NAN], &[1.0, 2.0], BOOTSTRAP_SEED).is_none());
        // A denominator resample of zeros is an infinite ratio, not a crash.
        let r = bootstrap_ratio(&[0.0, 0.0, 1.0, 1.0, 1.0], &[1.0, 1.0], BOOTSTRAP_SEED).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!(r.high >= 1.0);
    }

    #[test]
    fn verdict_needs_the_whole_interval_on_one_side() {
        let iv = |low, high| RatioInterval { ratio: (low + high) / 2.0, low, high };
        assert_eq!(iv(1.01, 1.2).change(), Change::Higher);
        assert_eq!(iv(0.8, 0.99).change(), Change::Lower);
        assert_eq!(iv(0.9, 1.1).change(), Change::NoClearDifference);
        assert_eq!(iv(1.0, 1.3).change(), Change::NoClearDifference);
        assert_eq!(iv(0.7, 1.0).change(), Change::NoClearDifference);
        // Excludes 1, but moved less than the noise: ratio 1.03 within 5%.
        assert_eq!(iv(1.01, 1.05).change_beyond(0.05), Change::NoClearDifference);
        assert_eq!(iv(1.01, 1.05).change_beyond(0.0), Change::Higher);
        assert_eq!(iv(1.1, 1.3).change_beyond(0.05), Change::Higher);
        assert_eq!(iv(0.9, 0.94).change_beyond(0.05), Change::Lower);
        assert_eq!(iv(0.94, 0.98).change_beyond(0.05), Change::NoClearDifference);
    }
}
