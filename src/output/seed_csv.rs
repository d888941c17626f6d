//! The course chapter's CSV schemas, byte-compatible with what its bench_*.sh scripts write, so
//! the chapter's existing analysis and plotting keep working on probe's output.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

const METRIC_HEADER: [&str; 3] = ["runtime", "metric", "value"];
const SCALE_HEADER: [&str; 4] = ["runtime", "count", "time_seconds", "memory_mb"];

/// One measurement. `value` is already formatted by the caller, who knows the metric's
/// resolution (the chapter writes milliseconds with one decimal: `printf "%.1f"`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub runtime: String,
    pub metric: String,
    pub value: String,
}

/// Header `runtime,metric,value`, then one row per measurement; the header is written even
/// with no rows, as the chapter's scripts do before their first measurement.
pub fn metric_csv(rows: &[MetricRow]) -> Result<Vec<u8>> {
    write_csv(&METRIC_HEADER, rows)
}

#[derive(Serialize, Clone, Debug)]
pub struct ScaleRow {
    pub runtime: String,
    pub count: u32,
    pub time_seconds: f64,
    pub memory_mb: f64,
}

/// Header `runtime,count,time_seconds,memory_mb`. Seconds get 3 decimals and MB one: the
/// chapter's 2 decimals (`bc scale=2`) and whole MB (`free -m`) would round a fast runtime's
/// 10-container launch, or its cgroup-measured memory, down to 0.
pub fn scale_csv(rows: &[ScaleRow]) -> Result<Vec<u8>> {
    let formatted: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.runtime.clone(),
                r.count.to_string(),
                format!("{:.3}", r.time_seconds),
                format!("{:.1}", r.memory_mb),
            ]
        })
        .collect();
    write_csv(&SCALE_HEADER, &formatted)
}

fn write_csv<R: Serialize>(header: &[&str], rows: &[R]) -> Result<Vec<u8>> {
    // Header written by hand: serde-driven headers are skipped when there are no rows.
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.serialize(row)?;
    }
    w.into_inner().context("flushing CSV buffer")
}

/// Parses a metric CSV back (for tests and for `probe report`), erroring on a wrong header.
pub fn parse_metric_csv(bytes: &[u8]) -> Result<Vec<MetricRow>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = r.headers().context("reading CSV header")?;
    if header.iter().ne(METRIC_HEADER) {
        bail!(
            "not a metric CSV: header is {:?}, expected {:?}",
            header.iter().collect::<Vec<_>>().join(","),
            METRIC_HEADER.join(",")
        );
    }
    r.deserialize()
        .map(|row| row.context("malformed metric CSV row"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(runtime: &str, metric: &str, value: &str) -> MetricRow {
        MetricRow {
            runtime: runtime.into(),
            metric: metric.into(),
            value: value.into(),
        }
    }

    #[test]
    fn metric_header_is_exact() {
        assert_eq!(metric_csv(&[]).unwrap(), b"runtime,metric,value\n");
        let out = metric_csv(&[row("docker", "startup_ms", "312.4")]).unwrap();
        assert_eq!(out, b"runtime,metric,value\ndocker,startup_ms,312.4\n");
    }

    #[test]
    fn scale_header_and_decimals() {
        assert_eq!(
            scale_csv(&[]).unwrap(),
            b"runtime,count,time_seconds,memory_mb\n"
        );
        let out = scale_csv(&[
            ScaleRow {
                runtime: "docker".into(),
                count: 10,
                time_seconds: 2.0,
                memory_mb: 50.0,
            },
            ScaleRow {
                runtime: "native".into(),
                count: 50,
                time_seconds: 0.0456,
                memory_mb: -3.24,
            },
        ])
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "runtime,count,time_seconds,memory_mb\ndocker,10,2.000,50.0\nnative,50,0.046,-3.2\n"
        );
    }

    #[test]
    fn metric_round_trip() {
        let rows = vec![
            row("bare", "startup_ms", "1.2"),
            row("podman", "startup_ms", "250.0"),
            // Quoting must survive: the chapter's data never has commas, a label might.
            row("native", "phase,rootfs \"ms\"", "0.8"),
        ];
        assert_eq!(parse_metric_csv(&metric_csv(&rows).unwrap()).unwrap(), rows);
    }

    #[test]
    fn parses_the_chapter_file_format() {
        let chapter = b"runtime,metric,value\r\ndocker,startup_ms,301.5\r\n";
        assert_eq!(
            parse_metric_csv(chapter).unwrap(),
            vec![row("docker", "startup_ms", "301.5")]
        );
    }

    #[test]
    fn wrong_header_rejected() {
        for bad in [
            &b"runtime,count,time_seconds,memory_mb\ndocker,10,2.00,50\n"[..],
            b"runtime,value,metric\n",
            b"runtime,metric\n",
            b"",
        ] {
            assert!(
                parse_metric_csv(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let err = parse_metric_csv(b"a,b,c\n").unwrap_err().to_string();
        assert!(err.contains("expected \"runtime,metric,value\""), "{err}");
    }

    #[test]
    fn short_row_rejected() {
        assert!(parse_metric_csv(b"runtime,metric,value\ndocker,startup_ms\n").is_err());
    }
}
