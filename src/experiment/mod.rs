//! One folder per experiment of the chapter, the suite (`all`) and `doctor`. Each returns data
//! (its Report, Serialize + Deserialize: the one result schema); none knows an output format
//! or writes prose.
pub mod all;
pub mod common;
pub mod cpu;
pub mod doctor;
pub mod io;
pub mod memory;
pub mod nested;
pub mod scale;
pub mod startup;
