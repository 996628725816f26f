//! Pure resolver (stub, being written).
pub struct Querier;
pub struct Resolution;
