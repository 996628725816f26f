//! The exposition writer: metrics gathered at a scrape ([`Sample`]s in
//! [`Metric`]s) encoded in the Prometheus text format (0.0.4) by
//! `prometheus-client`, through its `Collector` interface (values read at
//! the scrape, not kept in the crate's own metric types).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Label pairs of one sample.
pub type Labels = Vec<(&'static str, String)>;

/// A value at a scrape.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Gauge(f64),
    Counter(u64),
    /// `(upper bound, cumulative count)` ending at `+Inf`, the sum.
    Histogram(Vec<(f64, u64)>, f64),
}

/// One labelled sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: Value,
}

/// One metric: a name (without the `sparrow_` prefix; counters without
/// `_total`, which the encoder adds), help text, type and samples.
#[derive(Clone, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub samples: Vec<Sample>,
}

/// Metrics being gathered for one scrape.
#[derive(Debug, Default)]
pub struct Expo {
    metrics: Vec<Metric>,
}

impl Expo {
    fn push(&mut self, name: &'static str, help: &'static str, kind: MetricType) -> &mut Metric {
        self.metrics.push(Metric {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        self.metrics.last_mut().expect("just pushed")
    }

    /// A gauge with these samples.
    pub fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        rows: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let m = self.push(name, help, MetricType::Gauge);
        m.samples.extend(rows.into_iter().map(|(labels, v)| Sample {
            labels,
            value: Value::Gauge(v),
        }));
    }

    /// A counter with these samples.
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        rows: impl IntoIterator<Item = (Labels, u64)>,
    ) {
        let m = self.push(name, help, MetricType::Counter);
        m.samples.extend(rows.into_iter().map(|(labels, v)| Sample {
            labels,
            value: Value::Counter(v),
        }));
    }

    /// A histogram with these samples.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        rows: impl IntoIterator<Item = (Labels, Vec<(f64, u64)>, f64)>,
    ) {
        let m = self.push(name, help, MetricType::Histogram);
        m.samples
            .extend(rows.into_iter().map(|(labels, b, sum)| Sample {
                labels,
                value: Value::Histogram(b, sum),
            }));
    }

    /// The Prometheus text exposition, names prefixed with `sparrow_`.
    pub fn encode(self) -> Result<String, fmt::Error> {
        let mut reg = Registry::with_prefix("sparrow");
        reg.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &reg)?;
        Ok(out)
    }
}

impl Collector for Expo {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        for m in &self.metrics {
            // A metric with no sample is left out (its descriptor alone
            // says nothing).
            if m.samples.is_empty() {
                continue;
            }
            let mut me = enc.encode_descriptor(m.name, m.help, None, m.kind)?;
            for s in &m.samples {
                let mut f = me.encode_family(&s.labels)?;
                match &s.value {
                    Value::Gauge(v) => f.encode_gauge(v)?,
                    Value::Counter(v) => f.encode_counter::<NoLabelSet, _, u64>(v, None)?,
                    Value::Histogram(b, sum) => {
                        let count = b.last().map_or(0, |x| x.1);
                        // The encoder takes per-bucket counts without +Inf
                        // and accumulates them itself.
                        let mut prev = 0;
                        let per: Vec<(f64, u64)> = b
                            .iter()
                            .filter(|(le, _)| le.is_finite())
                            .map(|&(le, c)| {
                                let n = c - prev;
                                prev = c;
                                (le, n)
                            })
                            .collect();
                        f.encode_histogram::<NoLabelSet>(*sum, count, &per, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_exposition_of_each_type() {
        let mut e = Expo::default();
        e.gauge(
            "pop_usable",
            "POP usable.",
            [(vec![("pop", "x".to_string())], 1.0)],
        );
        e.counter(
            "dns_requests",
            "Requests.",
            [(vec![("proto", "udp".to_string())], 7)],
        );
        e.histogram(
            "dns_request_duration_seconds",
            "Time.",
            [(vec![], vec![(0.001, 2), (0.01, 3), (f64::INFINITY, 4)], 0.5)],
        );
        e.gauge("empty", "No samples.", []);
        let t = e.encode().unwrap();
        assert!(t.contains("sparrow_pop_usable{pop=\"x\"} 1"), "{t}");
        assert!(
            t.contains("# TYPE sparrow_dns_requests_total counter"),
            "{t}"
        );
        assert!(
            t.contains("sparrow_dns_requests_total{proto=\"udp\"} 7"),
            "{t}"
        );
        assert!(
            t.contains("sparrow_dns_request_duration_seconds_bucket{le=\"0.001\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("sparrow_dns_request_duration_seconds_bucket{le=\"0.01\"} 3"),
            "{t}"
        );
        assert!(
            t.contains("sparrow_dns_request_duration_seconds_bucket{le=\"+Inf\"} 4"),
            "{t}"
        );
        assert!(
            t.contains("sparrow_dns_request_duration_seconds_count 4"),
            "{t}"
        );
        assert!(!t.contains("sparrow_empty"), "{t}");
    }
}
