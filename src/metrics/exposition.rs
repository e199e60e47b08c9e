//! The two text formats `/metrics` speaks, chosen by the scrape's `Accept` header.
//!
//! prometheus-client writes OpenMetrics only. Prometheus' own text format 0.0.4 differs in the
//! metadata of a few types: a counter family is named with its `_total` suffix (OpenMetrics
//! names the family without it, so promtool reports "no help text" for every `..._total`
//! sample), there is no `# UNIT`, no `_created` sample, no exemplar and no `# EOF`. Both are
//! produced from the one OpenMetrics rendering, so they cannot disagree about values.

use std::collections::HashMap;

/// A `/metrics` response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`, only when the scrape asks for it.
    OpenMetrics,
    /// `text/plain; version=0.0.4`: the default, what curl, promtool and old scrapers read.
    Prometheus,
}

impl Format {
    /// OpenMetrics when `Accept` names `application/openmetrics-text` with a quality at least
    /// as high as any text/plain (or wildcard) entry; Prometheus text otherwise, also without
    /// an `Accept` header. Prometheus servers list OpenMetrics first, so they get it.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for entry in accept.unwrap_or("").split(',') {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Rewrites an OpenMetrics text exposition as Prometheus text format 0.0.4.
pub fn to_prometheus(openmetrics: &str) -> String {
    // Family name → OpenMetrics type, from the `# TYPE` lines (which follow `# HELP`).
    let types: HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = family_name(name, types.get(name).copied());
            push_line(&mut out, &["# HELP ", &name, " ", help]);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let name = family_name(name, Some(kind));
            let kind = match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" | "stateset" => "gauge",
                "gaugehistogram" => "histogram",
                _ => "untyped",
            };
            push_line(&mut out, &["# TYPE ", &name, " ", kind]);
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`: OpenMetrics only.
        } else if !line.is_empty() {
            let sample = strip_exemplar(line);
            let name = sample.split(['{', ' ']).next().unwrap_or("");
            let created = name
                .strip_suffix("_created")
                .is_some_and(|family| types.contains_key(family));
            if !created {
                push_line(&mut out, &[sample]);
            }
        }
    }
    out
}

/// The 0.0.4 name of a family: counters carry `_total`, info metrics `_info`.
fn family_name(name: &str, kind: Option<&str>) -> String {
    match kind {
        Some("counter") => format!("{name}_total"),
        Some("info") => format!("{name}_info"),
        _ => name.to_string(),
    }
}

/// A sample line without its exemplar (` # {...} value`), which 0.0.4 has no syntax for.
/// Label values may contain ` # `, so only a marker outside quotes counts.
fn strip_exemplar(line: &str) -> &str {
    let bytes = line.as_bytes();
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted && i > 0 && bytes[i - 1] == b' ' => return line[..i - 1].trim_end(),
            _ => {}
        }
    }
    line
}

fn push_line(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_asked_for() {
        use Format::*;
        for (accept, want) in [
            (None, Prometheus),
            (Some("text/plain;version=0.0.4"), Prometheus),
            (Some("*/*"), Prometheus),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                // What Prometheus 2.x sends.
                Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                OpenMetrics,
            ),
            (Some("text/plain, application/openmetrics-text;q=0.5"), Prometheus),
            (Some("application/openmetrics-text;q=0"), Prometheus),
            (Some("application/json"), Prometheus),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn counters_get_their_total_name_and_openmetrics_lines_go() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                  a_requests_total{route=\"mcp\"} 3\na_requests_created 17.0\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n\
                  # HELP a_up Up.\n# TYPE a_up gauge\n# UNIT a_up seconds\n\
                  a_up{x=\"say # {no}\"} 1 # {trace=\"1\"} 1.0\n# EOF\n";
        let text = to_prometheus(om);
        assert_eq!(
            text,
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{route=\"mcp\"} 3\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n\
             # HELP a_up Up.\n# TYPE a_up gauge\na_up{x=\"say # {no}\"} 1\n"
        );
    }
}
