//! Checks on a model's output: structure and where it points.
//!
//! - [`schema`]: JSON Schema validation of a structured answer (kind `json_schema`), with
//!   violation messages that name the JSON path, for one re-ask of the model.
//! - [`exfiltration`]: markdown images, HTML images and links to hosts outside an allow list
//!   that could carry data out of the conversation (kind `exfiltration`).

pub mod exfiltration;
pub mod schema;

pub use exfiltration::{ExfiltrationConfig, ExfiltrationScanner};
pub use schema::{JsonSchemaConfig, JsonSchemaScanner, response_format_schema, strip_fence};
