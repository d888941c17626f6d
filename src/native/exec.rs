//! execve of the user command from the container's init, with argv/envp and the PATH
//! candidates built by the parent (the init must not allocate between clone and execve).

use std::ffi::{CString, NulError};

use nix::errno::Errno;

/// PATH inside the container: the usual default, as Docker sets it.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec: argument {0:?} contains a NUL byte")]
    Nul(String),
    #[error("exec: no command given")]
    Empty,
    #[error("exec: execve {path}: {errno}")]
    Execve { path: String, errno: Errno },
}

pub struct Plan {
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl Plan {
    pub fn new(argv: &[String], hostname: &str) -> Result<Plan, ExecError> {
        let cs = |s: &str| CString::new(s).map_err(|_: NulError| ExecError::Nul(s.to_string()));
        let prog = argv.first().ok_or(ExecError::Empty)?;
        let candidates = if prog.contains('/') {
            vec![cs(prog)?]
        } else {
            CONTAINER_PATH
                .split(':')
                .map(|d| cs(&format!("{d}/{prog}")))
                .collect::<Result<_, _>>()?
        };
        let args = argv.iter().map(|a| cs(a)).collect::<Result<Vec<_>, _>>()?;
        let mut env = vec![
            format!("PATH={CONTAINER_PATH}"),
            "HOME=/root".into(),
            format!("HOSTNAME={hostname}"),
        ];
        if let Ok(term) = std::env::var("TERM") {
            env.push(format!("TERM={term}"));
        }
        let env = env.iter().map(|e| cs(e)).collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            argv_ptrs: null_terminated(&args),
            envp_ptrs: null_terminated(&env),
            candidates,
            _argv: args,
            _envp: env,
        })
    }

    /// Replaces the process image; only returns on failure. Like execvp(3), ENOENT moves on
    /// to the next PATH entry and any other error stops the search.
    pub fn exec(&self) -> ExecError {
        let mut errno = Errno::ENOENT;
        for path in &self.candidates {
            // SAFETY: NUL-terminated strings and NULL-terminated pointer arrays owned by self.
            unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                )
            };
            errno = Errno::last();
            if errno != Errno::ENOENT {
                return ExecError::Execve {
                    path: path.to_string_lossy().into_owned(),
                    errno,
                };
            }
        }
        let prog = self._argv[0].to_string_lossy();
        let path = if self.candidates.len() > 1 {
            format!("{prog} (searched {CONTAINER_PATH})")
        } else {
            prog.into_owned()
        };
        ExecError::Execve { path, errno }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_candidates_and_errors() {
        let p = Plan::new(&["true".into()], "h").unwrap();
        assert_eq!(p.candidates.len(), 6);
        assert_eq!(p.candidates[5].to_str().unwrap(), "/bin/true");
        assert_eq!(p.argv_ptrs.len(), 2);
        assert!(p.argv_ptrs[1].is_null());
        let p = Plan::new(&["/bin/sh".into(), "-c".into(), "x".into()], "h").unwrap();
        assert_eq!(p.candidates.len(), 1);
        assert!(matches!(Plan::new(&[], "h"), Err(ExecError::Empty)));
        assert!(matches!(
            Plan::new(&["a\0b".into()], "h"),
            Err(ExecError::Nul(_))
        ));
    }
}
