//! The load harness behind `sluice bench`: closed- and open-loop HTTP/1.1 and h2c load from a
//! cheap generator (one current-thread runtime per thread), latency in HDR histograms measured
//! from the intended send time, every status and error counted, interleaved comparisons of
//! several targets with each process's CPU time per request, SVG percentile plots, and built-in
//! scenarios that start what they measure.

pub mod compare;
pub mod cpu;
pub mod latency;
pub mod load;
pub mod outcome;
pub mod pin;
pub mod plot;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod target;

pub use compare::{Comparison, schedule};
pub use latency::Latencies;
pub use load::{LoadSpec, Mode, Stop};
pub use outcome::Outcome;
pub use target::{Protocol, Target};
