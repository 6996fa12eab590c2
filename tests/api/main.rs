//! Black-box tests of the MCP server through an MCP client over HTTP, of the simulator through
//! its HTTP interface, and of the command line. Every answer the simulator gives is checked
//! against the official OpenAPI spec.

mod actors;
mod arguments;
mod bounds;
mod browser;
mod calls;
mod claims;
mod cli;
mod dispatch;
mod faults;
mod fidelity;
mod guard;
mod hardening;
mod mcp;
mod mcp_support;
mod oauth;
mod properties;
mod reload;
mod replicas;
mod resources;
mod spec;
mod support;
mod telemetry;
mod webhook_events;
mod webhooks;
