//! What each command shows: its tables and lines on the terminal, one file per command (and
//! for startup and trace, the --timeline drawing they ask for).
pub mod all;
pub mod cleanup;
pub mod cpu;
pub mod doctor;
pub mod image;
pub mod io;
pub mod memory;
pub mod nested;
pub mod run;
pub mod scale;
pub mod startup;
pub mod trace;
