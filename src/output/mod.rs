//! Everything that leaves probe: terminal tables, the chapter's CSV files, JSON, run folders.
pub mod compare;
pub mod font;
pub mod results;
pub mod seed_csv;
pub mod stacked;
pub mod table;
pub mod timeline;
pub mod report;
