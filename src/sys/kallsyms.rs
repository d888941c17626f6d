//! The kernel's text symbols from /proc/kallsyms, to name the addresses of a kernel call
//! chain. Real addresses need root (or kptr_restrict 0); otherwise every address reads 0,
//! which is told as an error rather than naming every frame after the first symbol.

use std::path::Path;

use super::procfs::ProcError;

pub struct Kallsyms {
    /// (address, name), sorted by address.
    syms: Vec<(u64, String)>,
}

impl Kallsyms {
    pub fn load() -> Result<Self, ProcError> {
        let path = Path::new("/proc/kallsyms");
        let text = super::procfs::read(path)?;
        Self::parse(&text).ok_or_else(|| ProcError::Parse { path: path.into(), what: "no symbol addresses (hidden: kernel.kptr_restrict, or not root)".into() })
    }

    /// "ADDR TYPE NAME [module]" lines; only text symbols (t/T) name code.
    pub fn parse(text: &str) -> Option<Self> {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let ty = f.next()?;
                let name = f.next()?;
                (addr != 0 && (ty == "t" || ty == "T")).then(|| (addr, name.to_string()))
            })
            .collect();
        if syms.is_empty() {
            return None;
        }
        syms.sort_unstable_by_key(|s| s.0);
        Some(Kallsyms { syms })
    }

    /// The function `addr` is in (the nearest symbol at or below it).
    pub fn name(&self, addr: u64) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= addr);
        i.checked_sub(1).map(|i| self.syms[i].1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_an_address_by_the_symbol_below_it() {
        let k = Kallsyms::parse("ffffffff81000000 T _text\nffffffff81200000 t futex_wait\nffffffff81100000 T schedule\nffffffff81300000 D some_data\n").unwrap();
        assert_eq!(k.name(0xffffffff81100010), Some("schedule"));
        assert_eq!(k.name(0xffffffff81200000), Some("futex_wait"));
        assert_eq!(k.name(0xffffffff80000000), None);
        assert!(Kallsyms::parse("0000000000000000 T _text\n").is_none(), "hidden addresses are no table");
    }
}
