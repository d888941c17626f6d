//! Tracepoint record layouts, read from tracefs `events/<system>/<name>/format` rather than
//! hard-coded: field offsets change between kernel versions and configs (fields get added,
//! e.g. `ioprio` in `block_rq_issue`), and only the format file says where they are now.

use std::path::Path;

use serde::Serialize;

/// The common field holding TRACE_FLAG_* (include/linux/trace_events.h).
pub const COMMON_FLAGS: &str = "common_flags";

/// How a field's bytes are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Integer of 1, 2, 4 or 8 bytes (pointers too: a syscall tracepoint records the user
    /// pointer, never the string it points to).
    Int { signed: bool },
    /// Fixed `char name[N]`, NUL-padded.
    CharArray,
    /// `__data_loc`: a u32 whose low 16 bits are the payload's offset from the record start
    /// and high 16 bits its length (include/trace/stages/stage6_event_callback.h).
    DataLoc { string: bool },
    /// `__rel_loc`: like `__data_loc` but the offset counts from the end of this field.
    RelLoc { string: bool },
    /// Any other array: kept as bytes.
    Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub kind: FieldKind,
}

/// One tracepoint's id (the perf `config`) and field layout, common fields excluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFormat {
    /// `system/name`, e.g. `sched/sched_process_exec`.
    pub name: String,
    pub id: u64,
    pub fields: Vec<Field>,
}

/// A decoded field value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Uint(u64),
    Str(String),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Int(v) => Some(v as u64),
            Value::Uint(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_u64().map(|v| v as i64)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("tracepoint {event}: reading {path}: {source}")]
    Read {
        event: String,
        path: String,
        source: std::io::Error,
    },
    #[error("tracepoint {event}: line {line:?}: {why}")]
    Parse {
        event: String,
        line: String,
        why: &'static str,
    },
}

impl EventFormat {
    /// Reads `events/<name>/format` under the tracefs mount `tracefs`.
    pub fn load(tracefs: &Path, name: &str) -> Result<Self, FormatError> {
        let path = tracefs.join("events").join(name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| FormatError::Read {
            event: name.to_string(),
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(name, &text)
    }

    /// Parses the text of a format file. `name` is `system/name`.
    pub fn parse(name: &str, text: &str) -> Result<Self, FormatError> {
        let err = |line: &str, why| FormatError::Parse {
            event: name.to_string(),
            line: line.to_string(),
            why,
        };
        let mut id = None;
        let mut fields = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("ID:") {
                id = Some(v.trim().parse().map_err(|_| err(line, "ID is not a number"))?);
            } else if line.starts_with("field:") {
                let field = parse_field(line).ok_or_else(|| err(line, "not `field:TYPE NAME; offset:N; size:N; signed:N;`"))?;
                // sched_waking keeps common_flags: whether the wakeup ran in interrupt
                // context, where the sample's task is only the one the interrupt hit.
                if !field.name.starts_with("common_") || (name == "sched/sched_waking" && field.name == COMMON_FLAGS) {
                    fields.push(field);
                }
            }
        }
        Ok(EventFormat {
            name: name.to_string(),
            id: id.ok_or_else(|| err("", "no ID line"))?,
            fields,
        })
    }

    /// Decodes a tracepoint's raw bytes (perf's PERF_SAMPLE_RAW payload) into named values.
    /// Fields that would read past the end are skipped: the kernel pads RAW to 8 bytes but
    /// never truncates, so a short record means a format mismatch, not a value.
    pub fn decode(&self, raw: &[u8]) -> Vec<(String, Value)> {
        self.fields
            .iter()
            .filter_map(|f| decode_field(f, raw).map(|v| (f.name.clone(), v)))
            .collect()
    }

    /// Decodes the one field `name`, if the format has it.
    pub fn decode_one(&self, raw: &[u8], name: &str) -> Option<Value> {
        self.fields.iter().find(|f| f.name == name).and_then(|f| decode_field(f, raw))
    }
}

fn parse_field(line: &str) -> Option<Field> {
    let mut decl = None;
    let mut offset = None;
    let mut size = None;
    let mut signed = false;
    for part in line.split(';').map(str::trim) {
        if let Some(v) = part.strip_prefix("field:") {
            decl = Some(v.trim());
        } else if let Some(v) = part.strip_prefix("offset:") {
            offset = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("size:") {
            size = v.trim().parse().ok();
        } else if let Some(v) = part.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    let decl = decl?;
    let (ty, name) = decl.rsplit_once(|c: char| c.is_whitespace() || c == '*')?;
    let (name, array) = match name.split_once('[') {
        Some((n, rest)) => (n, Some(rest)),
        None => (name, None),
    };
    let size: usize = size?;
    let is_char = ty.trim_end().ends_with("char");
    let kind = if ty.starts_with("__data_loc") {
        FieldKind::DataLoc { string: ty.contains("char") }
    } else if ty.starts_with("__rel_loc") {
        FieldKind::RelLoc { string: ty.contains("char") }
    } else if array.is_some() && is_char {
        FieldKind::CharArray
    } else if array.is_some() || ![1, 2, 4, 8].contains(&size) {
        FieldKind::Bytes
    } else {
        FieldKind::Int { signed }
    };
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name: name.to_string(),
        offset: offset?,
        size,
        kind,
    })
}

fn read_uint(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    u64::from_ne_bytes(buf)
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn decode_field(f: &Field, raw: &[u8]) -> Option<Value> {
    let bytes = raw.get(f.offset..f.offset + f.size)?;
    Some(match f.kind {
        FieldKind::Int { signed } => {
            let v = read_uint(bytes);
            if signed {
                let shift = 64 - 8 * f.size as u32;
                Value::Int(((v << shift) as i64) >> shift)
            } else {
                Value::Uint(v)
            }
        }
        FieldKind::CharArray => Value::Str(c_string(bytes)),
        FieldKind::Bytes => Value::Bytes(bytes.to_vec()),
        FieldKind::DataLoc { string } | FieldKind::RelLoc { string } => {
            let loc = read_uint(bytes) as u32;
            let mut start = (loc & 0xffff) as usize;
            if matches!(f.kind, FieldKind::RelLoc { .. }) {
                start += f.offset + f.size;
            }
            let payload = raw.get(start..start + (loc >> 16) as usize)?;
            if string {
                Value::Str(c_string(payload))
            } else {
                Value::Bytes(payload.to_vec())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &str = include_str!("../../tests/fixtures/trace/sched_process_exec.format");
    const SWITCH: &str = include_str!("../../tests/fixtures/trace/sched_switch.format");
    const MKDIR: &str = include_str!("../../tests/fixtures/trace/cgroup_mkdir.format");
    const UNSHARE: &str = include_str!("../../tests/fixtures/trace/sys_enter_unshare.format");

    #[test]
    fn parses_fields_skipping_common_ones() {
        let f = EventFormat::parse("sched/sched_process_exec", EXEC).unwrap();
        assert_eq!(f.id, 365);
        let names: Vec<_> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["filename", "pid", "old_pid"]);
        assert_eq!(f.fields[0].kind, FieldKind::DataLoc { string: true });
        assert_eq!(f.fields[1], Field { name: "pid".into(), offset: 12, size: 4, kind: FieldKind::Int { signed: true } });
    }

    #[test]
    fn parses_char_arrays_and_pointers() {
        let f = EventFormat::parse("sched/sched_switch", SWITCH).unwrap();
        let prev = f.fields.iter().find(|f| f.name == "prev_comm").unwrap();
        assert_eq!((prev.offset, prev.size, prev.kind), (8, 16, FieldKind::CharArray));
        let u = EventFormat::parse("syscalls/sys_enter_unshare", UNSHARE).unwrap();
        assert_eq!(u.fields[1].name, "unshare_flags");
        assert_eq!(u.fields[1].kind, FieldKind::Int { signed: false });
    }

    #[test]
    fn rejects_format_without_id() {
        assert!(EventFormat::parse("x/y", "name: y\nformat:\n").is_err());
    }

    /// A `sched_process_exec` record laid out as the kernel writes it: pid 4242 exec'ing
    /// /usr/bin/true, the string after the fixed fields (offset 20, 14 bytes with the NUL).
    #[test]
    fn decodes_data_loc_string_and_ints() {
        let f = EventFormat::parse("sched/sched_process_exec", EXEC).unwrap();
        let mut raw = vec![0u8; 20];
        raw[0..2].copy_from_slice(&365u16.to_ne_bytes());
        raw[4..8].copy_from_slice(&4242i32.to_ne_bytes());
        raw[8..12].copy_from_slice(&(20u32 | (14 << 16)).to_ne_bytes());
        raw[12..16].copy_from_slice(&4242i32.to_ne_bytes());
        raw[16..20].copy_from_slice(&4241i32.to_ne_bytes());
        raw.extend_from_slice(b"/usr/bin/true\0");
        let v = f.decode(&raw);
        assert_eq!(v[0], ("filename".into(), Value::Str("/usr/bin/true".into())));
        assert_eq!(v[1], ("pid".into(), Value::Int(4242)));
        assert_eq!(v[2], ("old_pid".into(), Value::Int(4241)));
    }

    #[test]
    fn decodes_negative_and_truncated() {
        let f = EventFormat::parse("cgroup/cgroup_mkdir", MKDIR).unwrap();
        let mut raw = vec![0u8; 28];
        raw[8..12].copy_from_slice(&(-1i32).to_ne_bytes());
        raw[16..24].copy_from_slice(&77u64.to_ne_bytes());
        // path's data_loc points past the end: that field is skipped, the others stay.
        raw[24..28].copy_from_slice(&(40u32 | (10 << 16)).to_ne_bytes());
        let v = f.decode(&raw);
        assert_eq!(v[0], ("root".into(), Value::Int(-1)));
        assert_eq!(v[2], ("id".into(), Value::Uint(77)));
        assert!(v.iter().all(|(n, _)| n != "path"));
    }

    #[test]
    fn rel_loc_counts_from_field_end() {
        let f = Field { name: "s".into(), offset: 8, size: 4, kind: FieldKind::RelLoc { string: true } };
        let mut raw = vec![0u8; 12];
        raw[8..12].copy_from_slice(&(0u32 | (3 << 16)).to_ne_bytes());
        raw.extend_from_slice(b"ab\0");
        assert_eq!(decode_field(&f, &raw), Some(Value::Str("ab".into())));
    }
}
