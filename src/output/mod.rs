//! Everything that leaves probe: terminal tables, the chapter's CSV files, JSON, run folders.
pub mod compare;
pub mod emit;
pub mod font;
pub mod results;
pub mod run_files;
pub mod seed_csv;
pub mod stacked;
pub mod table;
pub mod terminal;
pub mod timeline;
pub mod report;
