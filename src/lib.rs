//! callbox: firmware daemon for a LiveKit video-call appliance.
//!
//! Layout (design §2): [`call`] is the pure state machine; [`app`] is the supervisor
//! that connects it to the edges: [`signaling`] (hub REST + WebSocket), [`media`]
//! (GStreamer), [`control`] (local unix socket). [`config`] is the config file.

pub mod app;
pub mod call;
pub mod check;
pub mod config;
pub mod control;
pub mod gpio;
pub mod media;
pub mod memory;
pub mod screen;
pub mod service;
pub mod signaling;
pub mod state_file;
