//! Errors of loading a report. Each names the origin and the place, and says what was expected.

use std::fmt;

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// JSON: 1-based line and column, with the user record (0-based index) and field when known.
    Json {
        line: usize,
        column: usize,
        record: Option<usize>,
        field: Option<&'static str>,
    },
    /// CSV: 1-based line, and the 1-based column with its header name when known.
    Csv {
        line: u64,
        column: Option<(usize, String)>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{origin}: cannot read the report: {source}")]
    Io {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: the input is empty; expected a users groups report as JSON or CSV")]
    Empty { origin: String },
    #[error(
        "{origin}: byte {offset}: binary data; expected a users groups report as JSON or CSV text"
    )]
    Binary { origin: String, offset: usize },
    #[error("{origin}:{location}: {message}")]
    Malformed {
        origin: String,
        location: Location,
        message: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Json {
                line,
                column,
                record,
                field,
            } => {
                write!(f, "{line}:{column}")?;
                if let Some(r) = record {
                    write!(f, ": user record {r}")?;
                }
                if let Some(name) = field {
                    write!(f, ", field `{name}`")?;
                }
                Ok(())
            }
            Location::Csv { line, column } => {
                write!(f, " CSV line {line}")?;
                if let Some((n, name)) = column {
                    write!(f, ", column {n} (`{name}`)")?;
                }
                Ok(())
            }
        }
    }
}
