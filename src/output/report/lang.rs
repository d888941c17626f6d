//! The report's two languages. Every sentence is written at its call site in both, via
//! `Lang::pick`, so a missing translation is impossible to overlook when reading the code.
//! Spanish is the chapter's language; its report is for the course's students.

use clap::ValueEnum;

use crate::ground::phase::Phase;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub fn pick<T>(self, en: T, es: T) -> T {
        match self {
            Lang::En => en,
            Lang::Es => es,
        }
    }

    pub fn phase(self, p: Phase) -> &'static str {
        match self {
            Lang::En => p.name(),
            Lang::Es => match p {
                Phase::Client => "cliente",
                Phase::Engine => "motor",
                Phase::Rootfs => "rootfs",
                Phase::Runtime => "runtime OCI",
                Phase::Cgroup => "cgroup",
                Phase::Namespaces => "namespaces",
                Phase::Mounts => "montajes",
                Phase::Security => "seguridad",
                Phase::Exec => "exec",
                Phase::Workload => "comando",
                Phase::Teardown => "desmontaje",
                Phase::Unattributed => "sin atribuir",
            },
        }
    }

    /// A phase's detail label ("attach", "clone3 pid"): syscall and namespace names stay as
    /// they are, the English verbs the native runtime uses are translated.
    pub fn detail(self, detail: &str) -> String {
        if self == Lang::En {
            return detail.to_string();
        }
        const WORDS: [(&str, &str); 9] = [
            ("prepare", "preparar"),
            ("create", "crear"),
            ("attach", "unir"),
            ("cleanup", "limpieza"),
            ("remove", "quitar"),
            ("wait", "esperar"),
            ("exit", "salida"),
            ("start", "inicio"),
            ("container", "contenedor"),
        ];
        detail
            .split(' ')
            .map(|w| {
                WORDS
                    .iter()
                    .find(|(en, _)| *en == w)
                    .map(|(_, es)| *es)
                    .unwrap_or(w)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_has_a_spanish_name_and_details_are_translated() {
        for p in Phase::ALL {
            assert!(!Lang::Es.phase(p).is_empty());
        }
        assert_eq!(Lang::Es.phase(Phase::Teardown), "desmontaje");
        assert_eq!(Lang::Es.detail("rootfs cleanup"), "rootfs limpieza");
        assert_eq!(Lang::Es.detail("clone3 pid"), "clone3 pid");
        assert_eq!(Lang::En.detail("attach"), "attach");
    }
}
