//! Opening what an experiment measures (its runtimes, or io's storage modes) before anything
//! is measured, so a missing engine or image fails the run at once instead of after minutes
//! of reps.

use serde::{Deserialize, Serialize};

use crate::ground::RuntimeKind;
use crate::runtimes::EngineError;

/// A runtime left out of a run, with why.
#[derive(Serialize, Deserialize, Debug)]
pub struct Skipped {
    pub runtime: RuntimeKind,
    pub reason: String,
}

/// What opened, and what did not with its error.
pub type Opened<K, T, E> = (Vec<T>, Vec<(K, E)>);

/// Opens each of `units` in order. One the user named (`explicit`) must open: its error,
/// through `refused`, ends the run. A default one that cannot is returned with its error, to
/// be listed as skipped. Ends the run with "no {nothing}" when none opened.
pub fn open_each<K: Copy, T, E>(
    units: &[K],
    explicit: bool,
    nothing: &str,
    mut open: impl FnMut(K) -> Result<T, E>,
    refused: impl FnOnce(K, E) -> anyhow::Error,
) -> anyhow::Result<Opened<K, T, E>> {
    let mut opened = Vec::new();
    let mut failed = Vec::new();
    for &unit in units {
        match open(unit) {
            Ok(t) => opened.push(t),
            Err(e) if !explicit => failed.push((unit, e)),
            Err(e) => return Err(refused(unit, e)),
        }
    }
    anyhow::ensure!(!opened.is_empty(), "no {nothing}; `probe doctor` says why");
    Ok((opened, failed))
}

/// `open_each` over runtimes, whose errors already name the runtime and the fix.
pub fn open_runtimes<T>(
    kinds: &[RuntimeKind],
    explicit: bool,
    nothing: &str,
    open: impl FnMut(RuntimeKind) -> Result<T, EngineError>,
) -> anyhow::Result<(Vec<T>, Vec<Skipped>)> {
    let (opened, failed) = open_each(kinds, explicit, nothing, open, |_, e| e.into())?;
    let skipped = failed.into_iter().map(|(runtime, e)| Skipped { runtime, reason: e.to_string() }).collect();
    Ok((opened, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(n: u32) -> Result<u32, String> {
        if n % 2 == 0 { Ok(n) } else { Err(format!("{n} is odd")) }
    }

    #[test]
    fn defaults_are_skipped_named_ones_refused() {
        let refused = |n: u32, e: String| anyhow::anyhow!("{n} cannot run here: {e}");
        let (ok, failed) = open_each(&[1, 2, 4], false, "number is even", open, refused).unwrap();
        assert_eq!((ok, failed), (vec![2, 4], vec![(1, "1 is odd".to_string())]));
        let e = open_each(&[2, 3, 5], true, "number is even", open, refused).unwrap_err();
        assert_eq!(e.to_string(), "3 cannot run here: 3 is odd", "stops at the first named one that fails");
        let e = open_each(&[1, 3], false, "number is even", open, refused).unwrap_err();
        assert_eq!(e.to_string(), "no number is even; `probe doctor` says why");
    }
}
