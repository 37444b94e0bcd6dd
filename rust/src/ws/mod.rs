//! WebSocket client as the real client speaks it: rustls without ALPN, tungstenite's handshake layout,
//! permessage-deflate offered as `permessage-deflate; client_max_window_bits`.
//!
//! `handshake`, `frame` and `deflate` are sans-IO; `client` drives them over a socket.

pub mod client;
pub mod deflate;
pub mod frame;
pub mod handshake;
