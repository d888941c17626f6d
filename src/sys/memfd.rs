//! Anonymous in-memory files (memfd_create(2)): bytes that live in the page cache, outside
//! the process's address space, gone when the last descriptor closes.

use std::fs::File;
use std::os::fd::FromRawFd;

/// A new close-on-exec memfd; `name` only shows in /proc/PID/fd.
pub fn create(name: &str) -> std::io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: valid C string; the returned fd is owned by the File.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}
