//! The one TrueType font every drawing uses (report charts, trace timelines): plotters lays
//! out text with it for SVG and PNG alike.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::style::FontStyle;

/// The family name the font is registered under.
pub const FONT: &str = "sans-serif";
/// Where Debian's fonts-dejavu-core puts it; any other TrueType font under /usr/share/fonts
/// is the fallback.
const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers a TrueType font with plotters, once per process. plotters lays out every text
/// with it, for SVG too (label widths), so without a font no chart can be drawn at all.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = std::iter::once(Path::new(DEJAVU).to_path_buf())
                .chain(any_ttf(Path::new("/usr/share/fonts")))
                .find(|p| p.is_file())
                .ok_or_else(|| format!("no TrueType font found ({DEJAVU} is missing): install fonts-dejavu-core to get charts"))?;
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
            // plotters keeps fonts for the life of the process and wants 'static bytes; this
            // runs once, so the leak is one font file.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font: install fonts-dejavu-core", path.display()))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn any_ttf(dir: &Path) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(found) = any_ttf(&p) {
                return Some(found);
            }
        } else if p.extension().is_some_and(|e| e == "ttf") {
            return Some(p);
        }
    }
    None
}
