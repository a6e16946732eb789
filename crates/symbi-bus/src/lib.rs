//! Communication bus: direct, publish/subscribe and request/response; secure messages; in-process and NATS backends
