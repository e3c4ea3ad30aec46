//! The cases, one module per area. Each `pub async fn` here is a case: it gets a fresh, empty
//! store and uses the `Store` trait only. Every case must be in the list of `__with_cases!`
//! (`src/lib.rs`); a unit test fails otherwise. Helpers in these files are not `pub async fn`.

pub mod admission;
pub mod alerts;
pub mod audit;
pub mod deliveries;
pub mod licenses;
pub mod places;
pub mod portal;
pub mod properties;
pub mod reports;
pub mod settings;
pub mod shared;
pub mod trials;
