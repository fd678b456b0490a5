//! orgaudit: audit who has access to a Telnyx organization.
pub mod model;
pub mod rules;
pub mod source;
pub mod yaml;
