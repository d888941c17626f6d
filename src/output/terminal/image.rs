//! `probe image build` on the terminal: each image's digest and what each engine did with it.

use crate::runtimes::image::build::BuildReport;
use crate::runtimes::image::nested::NestedBuildReport;

pub fn render(report: &BuildReport, nested: Option<&NestedBuildReport>) -> String {
    let mut out = format!(
        "probe-test:latest digest {} — rootfs {} ({})\n",
        report.digest,
        report.rootfs.display(),
        if report.rootfs_rebuilt { "rebuilt" } else { "up to date" }
    );
    for e in &report.engines {
        out.push_str(&format!("  {:<16} {}\n", e.runtime.name(), e.outcome));
    }
    if let Some(n) = nested {
        out.push_str(&format!(
            "{} digest {} — rootfs {} ({})\n",
            n.tag,
            n.digest,
            n.rootfs.display(),
            if n.rootfs_rebuilt { format!("rebuilt in {:.0}s", n.rootfs_seconds) } else { "up to date".into() }
        ));
        for e in &n.engines {
            out.push_str(&format!("  {:<16} {}\n", e.runtime.name(), e.outcome));
        }
    }
    out
}
