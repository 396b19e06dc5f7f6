//! OpenTelemetry traces: OTLP over HTTP/protobuf, configured by the standard
//! `OTEL_*` variables and off unless an OTLP endpoint is set.
//!
//! One span per inbound request (a server span continuing the client's
//! `traceparent`), with children for each policy, the upstream call, the
//! store calls and the calls to the identity provider. A request's
//! OpenTelemetry [`Context`] is attached to its future, so the code deep in
//! the OAuth path (the store, the Cognito leg) opens its children through
//! [`child`] without being handed anything. Only a sampled request carries
//! the tracer in its context: an unsampled one opens no child at all, which
//! keeps the cost of tracing at a low sampling ratio close to nothing.
//!
//! The variables (process environment, read at boot):
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (either
//! turns tracing on), `OTEL_SERVICE_NAME` (default `cognigate-gateway`),
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default
//! `parentbased_always_on`), `OTEL_SDK_DISABLED=true` and
//! `OTEL_TRACES_EXPORTER=none` (off); the exporter reads its own
//! (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`, ...).

use std::borrow::Cow;
use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, Method};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, SpanContext, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use sha2::Digest;

pub(crate) use opentelemetry::context::FutureExt as WithTraceContext;

/// The attribute naming what became of a request (`forwarded`,
/// `unauthorized`, a policy's answer such as `rate_limited`, ...).
pub(crate) const OUTCOME: &str = "cognigate.outcome";
const DEFAULT_SERVICE_NAME: &str = "cognigate-gateway";
const SAMPLERS: &str =
    "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTEL_TRACES_SAMPLER=`{0}` is not a sampler this gateway knows. Fix: use one of {SAMPLERS}")]
    Sampler(String),
    #[error(
        "OTEL_TRACES_SAMPLER_ARG=`{0}` is not a sampling ratio. Fix: give a number from 0 to 1, e.g. 0.01 for 1 % of the traces"
    )]
    SamplerArg(String),
    #[error(
        "{var}=`{value}`: this gateway exports traces over OTLP HTTP/protobuf only. Fix: set {var}=http/protobuf (and point the endpoint at the collector's HTTP port, usually 4318)"
    )]
    Protocol { var: &'static str, value: String },
    #[error(
        "cannot build the OTLP trace exporter: {0}. Fix: check OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://collector:4318)"
    )]
    Exporter(String),
}

/// What a trace says about the user behind a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TraceSubject {
    /// `enduser.pseudo.id`: SHA-256 of the subject (first 16 bytes, hex), so
    /// traces of one user group together without naming them.
    #[default]
    Hashed,
    /// `enduser.id`: the subject as the identity provider gave it.
    Plain,
    /// Nothing about the user.
    Off,
}

/// How traces are sampled and where they go.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// Where spans are posted: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is,
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    pub traces_url: String,
    pub service_name: String,
    pub sampler: SamplerChoice,
    pub subject: TraceSubject,
}

/// The standard samplers (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerChoice {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

impl SamplerChoice {
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (whose default ratio is 1).
    pub(crate) fn parse(name: Option<&str>, arg: Option<&str>) -> Result<Self, TelemetryError> {
        let ratio = || match arg.map(str::trim).filter(|arg| !arg.is_empty()) {
            None => Ok(1.0),
            Some(text) => match text.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
                _ => Err(TelemetryError::SamplerArg(text.to_owned())),
            },
        };
        Ok(match name.map(str::trim).unwrap_or("parentbased_always_on") {
            "" | "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::Ratio(ratio()?),
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedRatio(ratio()?),
            other => return Err(TelemetryError::Sampler(other.to_owned())),
        })
    }

    fn sampler(self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedRatio(ratio) => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))),
        }
    }
}

impl TraceSettings {
    /// The settings the `OTEL_*` variables of `env` give; `None` when they
    /// leave tracing off (no OTLP endpoint, the SDK disabled, or the traces
    /// exporter set to `none`).
    pub(crate) fn from_env(
        env: impl Fn(&str) -> Option<String>,
        subject: TraceSubject,
    ) -> Result<Option<Self>, TelemetryError> {
        let set = |name: &str| env(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
        let traces_url = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        });
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true"));
        let exporter_off = set("OTEL_TRACES_EXPORTER").is_some_and(|value| value.eq_ignore_ascii_case("none"));
        let Some(traces_url) = traces_url.filter(|_| !disabled && !exporter_off) else {
            return Ok(None);
        };
        for var in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let Some(value) = set(var).filter(|value| value != "http/protobuf") {
                return Err(TelemetryError::Protocol { var, value });
            }
        }
        let sampler =
            SamplerChoice::parse(set("OTEL_TRACES_SAMPLER").as_deref(), set("OTEL_TRACES_SAMPLER_ARG").as_deref())?;
        let service_name = set("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
        Ok(Some(Self { traces_url, service_name, sampler, subject }))
    }
}

impl TraceSettings {
    /// The traces URL without any credentials it may hold, for the log.
    pub(crate) fn endpoint_for_log(&self) -> String {
        match url::Url::parse(&self.traces_url) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
            }
            Err(_) => "(not a URL)".to_owned(),
        }
    }
}

/// A running trace pipeline: the tracer requests open spans with, and the
/// provider whose batch exporter sends them.
pub struct Tracing {
    tracer: SdkTracer,
    provider: SdkTracerProvider,
    subject: TraceSubject,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing").field("subject", &self.subject).finish_non_exhaustive()
    }
}

impl Tracing {
    /// Starts the exporter (a thread of its own that sends batches). Call
    /// outside the async runtime or in `spawn_blocking`.
    pub fn start(settings: &TraceSettings) -> Result<Self, TelemetryError> {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.clone())
            .build()
            .map_err(|err| TelemetryError::Exporter(err.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(settings.service_name.clone()).build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(settings.sampler.sampler())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(DEFAULT_SERVICE_NAME);
        Ok(Self { tracer, provider, subject: settings.subject })
    }

    /// Sends every span ended so far (blocking).
    pub fn flush(&self) {
        if let Err(err) = self.provider.force_flush() {
            tracing::warn!(error = %err, "cannot send the last traces to the OTLP endpoint");
        }
    }

    /// Sends what is left and stops the exporter (blocking; at exit).
    pub fn shutdown(&self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "cannot send the last traces to the OTLP endpoint");
        }
    }

    /// The server span of an inbound request, continuing the client's
    /// `traceparent` when it sent one. A sampled request's span is named
    /// `{method} {route}` and gets the route's attributes, and its context
    /// carries the tracer for its children; an unsampled one is only the ids
    /// (no name made, no context built: most requests are not sampled).
    pub(crate) fn start_request(&self, headers: &HeaderMap, method: &Method, route: &str) -> RequestSpan {
        let parent = propagator().extract(&opentelemetry_http::HeaderExtractor(headers));
        let span =
            self.tracer.span_builder("request").with_kind(SpanKind::Server).start_with_context(&self.tracer, &parent);
        if !span.is_recording() {
            return RequestSpan::Unsampled(span.span_context().clone());
        }
        let mut span = span;
        span.update_name(format!("{method} {route}"));
        span.set_attributes([
            KeyValue::new("http.request.method", method.as_str().to_owned()),
            KeyValue::new("http.route", route.to_owned()),
        ]);
        RequestSpan::Sampled(
            parent.with_span(span).with_value(Children { tracer: self.tracer.clone(), subject: self.subject }),
        )
    }
}

/// A request's server span.
pub(crate) enum RequestSpan {
    /// Exported: its context is attached to the request's future.
    Sampled(Context),
    /// Not exported: only its ids travel on (see [`write_trace_headers`]).
    Unsampled(SpanContext),
}

/// `traceparent` (and the caller's `tracestate`) of an unsampled request's
/// span, into the headers that go upstream: the upstream continues the trace,
/// knowing it is not sampled.
pub(crate) fn write_trace_headers(span: &SpanContext, headers: &mut HeaderMap) {
    let traceparent =
        format!("00-{}-{}-{:02x}", span.trace_id(), span.span_id(), span.trace_flags().to_u8() & SAMPLED_FLAG);
    if let Ok(value) = HeaderValue::try_from(traceparent) {
        headers.insert(TRACEPARENT, value);
    }
    let state = span.trace_state().header();
    match HeaderValue::try_from(state).ok().filter(|value| !value.is_empty()) {
        Some(value) => headers.insert(TRACESTATE, value),
        None => headers.remove(TRACESTATE),
    };
}

const TRACEPARENT: &str = "traceparent";
/// The one trace flag W3C trace context defines.
const SAMPLED_FLAG: u8 = 0x01;

/// Runs the rest of the middleware stack and the handler inside the
/// request's server span (every endpoint but the proxy route, which opens
/// its own).
pub(crate) async fn within_request_span(
    tracing: &Tracing,
    route: &str,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tracing.start_request(request.headers(), request.method(), route) {
        RequestSpan::Unsampled(_) => next.run(request).await,
        RequestSpan::Sampled(cx) => {
            let response = next.run(request).with_context(cx.clone()).await;
            finish_request(&cx, response.status().as_u16(), None);
            response
        }
    }
}

/// What a sampled request's children are opened with.
struct Children {
    tracer: SdkTracer,
    subject: TraceSubject,
}

fn propagator() -> TraceContextPropagator {
    TraceContextPropagator::new()
}

/// A span that ends when dropped.
pub(crate) struct ChildSpan {
    cx: Context,
}

impl ChildSpan {
    pub(crate) fn set(&self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.cx.span().set_attribute(KeyValue::new(key, value));
    }

    pub(crate) fn set_all(&self, attributes: Vec<KeyValue>) {
        self.cx.span().set_attributes(attributes);
    }

    pub(crate) fn fail(&self, message: impl Into<Cow<'static, str>>) {
        self.cx.span().set_status(Status::error(message));
    }

    /// Its context: what a call it makes passes on as its parent.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

/// A child of the current request's span, when that request is sampled
/// (its name is only made then: most requests are not).
pub(crate) fn child<N: Into<Cow<'static, str>>>(name: impl FnOnce() -> N, kind: SpanKind) -> Option<ChildSpan> {
    Context::map_current(|cx| {
        let children = cx.get::<Children>()?;
        let span = children.tracer.span_builder(name()).with_kind(kind).start_with_context(&children.tracer, cx);
        Some(ChildSpan { cx: cx.with_span(span) })
    })
}

/// Whether the current request is sampled (its spans are exported).
pub(crate) fn sampled() -> bool {
    Context::map_current(|cx| cx.get::<Children>().is_some())
}

/// Sets attributes on the current request's span, when it is sampled (the
/// closure is not run otherwise).
pub(crate) fn annotate(attributes: impl FnOnce() -> Vec<KeyValue>) {
    Context::map_current(|cx| {
        if cx.get::<Children>().is_some() {
            cx.span().set_attributes(attributes());
        }
    });
}

/// The user behind the current request, as the operator chose to show them.
pub(crate) fn annotate_user(subject: &str, client_id: &str) {
    Context::map_current(|cx| {
        let Some(children) = cx.get::<Children>() else {
            return;
        };
        let span = cx.span();
        span.set_attribute(KeyValue::new("cognigate.client_id", client_id.to_owned()));
        match children.subject {
            TraceSubject::Hashed => span.set_attribute(KeyValue::new("enduser.pseudo.id", hash_subject(subject))),
            TraceSubject::Plain => span.set_attribute(KeyValue::new("enduser.id", subject.to_owned())),
            TraceSubject::Off => {}
        }
    });
}

/// SHA-256 of the subject, its first 16 bytes in hex.
pub(crate) fn hash_subject(subject: &str) -> String {
    let digest = sha2::Sha256::digest(subject.as_bytes());
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The request span of `cx` ends with the response's status and the
/// request's outcome.
pub(crate) fn finish_request(cx: &Context, status: u16, outcome: Option<&'static str>) {
    let span = cx.span();
    if span.is_recording() {
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if let Some(outcome) = outcome {
            span.set_attribute(KeyValue::new("cognigate.outcome", outcome));
        }
        if status >= 500 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
    }
    span.end();
}

/// `traceparent` and `tracestate` for a call made from `cx`.
pub(crate) fn trace_headers(cx: &Context) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    propagator().inject_context(cx, &mut fields);
    fields
}

/// Writes `traceparent` (and `tracestate`) of `cx` into `headers`, replacing
/// the client's: the upstream's parent is the span that called it.
pub(crate) fn inject(cx: &Context, headers: &mut HeaderMap) {
    headers.remove(TRACESTATE);
    propagator().inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
}

const TRACESTATE: &str = "tracestate";

#[cfg(test)]
mod tests {
    use super::{SamplerChoice, TelemetryError, TraceSettings, TraceSubject, hash_subject};

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<TraceSettings>, TelemetryError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        TraceSettings::from_env(
            |name| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()),
            TraceSubject::Hashed,
        )
    }

    #[test]
    fn tracing_is_off_unless_an_endpoint_is_set() {
        assert!(settings(&[]).unwrap().is_none());
        assert!(settings(&[("OTEL_TRACES_SAMPLER", "always_on")]).unwrap().is_none());
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]).unwrap().is_none());
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap().unwrap();
        assert_eq!(on.service_name, "cognigate-gateway");
        assert_eq!(on.traces_url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(on.sampler, SamplerChoice::ParentBasedAlwaysOn);
        let traces = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/custom/traces"),
        ]);
        assert_eq!(traces.unwrap().unwrap().traces_url, "http://c/custom/traces");
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]).unwrap().is_none(), "{off:?}");
        }
    }

    #[test]
    fn the_standard_samplers_and_their_ratio_are_read() {
        let read = |name: &str, arg: Option<&str>| SamplerChoice::parse(Some(name), arg);
        assert_eq!(read("parentbased_traceidratio", Some("0.01")).unwrap(), SamplerChoice::ParentBasedRatio(0.01));
        assert_eq!(read("traceidratio", None).unwrap(), SamplerChoice::Ratio(1.0));
        assert_eq!(read("always_off", None).unwrap(), SamplerChoice::AlwaysOff);
        let named = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "gw-eu"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((named.service_name.as_str(), named.sampler), ("gw-eu", SamplerChoice::ParentBasedRatio(0.25)));
    }

    #[test]
    fn a_bad_sampler_or_protocol_is_refused_with_the_fix() {
        let err = SamplerChoice::parse(Some("ratio"), None).unwrap_err().to_string();
        assert!(err.contains("`ratio`") && err.contains("parentbased_traceidratio"), "{err}");
        for arg in ["1.5", "one", "-0.1"] {
            let err = SamplerChoice::parse(Some("traceidratio"), Some(arg)).unwrap_err().to_string();
            assert!(err.contains(arg) && err.contains("0.01"), "{err}");
        }
        let err =
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
                .unwrap_err()
                .to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=`grpc`") && err.contains("4318"), "{err}");
    }

    #[test]
    fn a_hashed_subject_is_stable_and_hides_the_value() {
        let hashed = hash_subject("0b3c6c1e-user");
        assert_eq!(hashed.len(), 32);
        assert_eq!(hashed, hash_subject("0b3c6c1e-user"));
        assert!(!hashed.contains("user"));
        assert_ne!(hashed, hash_subject("another"));
    }
}
