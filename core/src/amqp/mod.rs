//! AMQP: topology, the job message, trace propagation, the self-healing publisher and the log
//! forwarder.

mod job;
mod log_forwarder;
mod publisher;
mod topology;
pub mod trace_context;

pub use self::{
    job::{JobMeta, MalformedJob, Source, header_text},
    log_forwarder::{AmqpLogLayer, LogLine, forward_logs, log_routing_key},
    publisher::{PublishError, Publisher},
    topology::{DELIVERY_LIMIT, SCAN_ROUTING_KEY, Topology},
};
pub use lapin;
