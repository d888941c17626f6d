//! The report as a document model, built once and written twice (Markdown and HTML), so the
//! two files can never say different things. Text may hold `code spans` in backticks; both
//! writers render them as code.

pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

pub enum Block {
    /// Level 2 or 3 (the title is level 1).
    Heading(u8, String),
    Para(String),
    /// A caveat the reader must not miss (failed experiment, noise, outliers).
    Note(String),
    List(Vec<String>),
    Table(Table),
    /// Index into the report's charts.
    Figure(usize),
}

pub struct Table {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(head: impl IntoIterator<Item = S>) -> Table {
        Table {
            head: head.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

/// A chart as the writers need it: drawn already.
pub struct Figure {
    pub title: String,
    /// Relative path of the PNG from the report file, None when it could not be drawn.
    pub png: Option<String>,
    pub svg: Option<String>,
}
