//! Writing the report's files. Unlike measurements (results.rs never overwrites), a report is
//! derived and is regenerated in place; each file is still replaced atomically (temp file,
//! fsync, rename) so a reader never sees half a report.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

pub fn replace_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    write_via_temp(dest, |tmp| {
        let mut f = fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
}

/// Lets `write` produce the file at a temp path (plotters writes PNGs to a path itself),
/// then renames it over `dest`. The temp file is removed if anything fails.
pub fn write_via_temp(dest: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let name = dest
        .file_name()
        .context("report file without a name")?
        .to_string_lossy();
    // Hidden, and ending in the real name: plotters picks the image format by extension.
    let tmp = dest.with_file_name(format!(".tmp-{}-{name}", std::process::id()));
    let done = write(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            fs::rename(&tmp, dest)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))
        });
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done
}
