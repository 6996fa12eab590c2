//! Black-box tests of the simulator through its HTTP interface and of the command line. Every
//! answer the simulator gives is checked against the official OpenAPI spec.

mod cli;
mod faults;
mod fidelity;
mod resources;
mod spec;
mod support;
mod webhooks;
