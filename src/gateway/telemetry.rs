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
use std::cell::Cell;
use std::collections::HashMap;
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::trace::{SpanId, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider};
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
    sampler: SamplerChoice,
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
            .with_id_generator(DecidedIds)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(DEFAULT_SERVICE_NAME);
        Ok(Self { tracer, provider, sampler: settings.sampler, subject: settings.subject })
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
    /// `traceparent` when it sent one. The sampling decision is taken here,
    /// before the SDK is asked, with the configured sampler's own rule: an
    /// unsampled request (most of them) is only a pair of fresh ids, with no
    /// SDK span, no context and no allocation. A sampled request's span is
    /// named `{method} {route}` and gets the route's attributes, and its
    /// context carries the tracer for its children.
    pub(crate) fn start_request(&self, headers: &HeaderMap, method: &Method, route: &str) -> RequestSpan {
        let parent = CallerParent::read(headers);
        let trace_id = match &parent {
            CallerParent::Valid { trace_id, .. } => *trace_id,
            CallerParent::None => RandomIdGenerator::default().new_trace_id(),
            CallerParent::Unusual => return self.start_with_sdk(headers, method, route),
        };
        let parent_sampled = match parent {
            CallerParent::Valid { sampled, .. } => Some(sampled),
            _ => None,
        };
        if !self.sampler.samples(parent_sampled, trace_id) {
            let span_id = RandomIdGenerator::default().new_span_id();
            return RequestSpan::Unsampled(UnsampledSpan { trace_id, span_id, has_parent: parent_sampled.is_some() });
        }
        if parent_sampled.is_none() {
            // The SDK draws a root span's trace id from its id generator:
            // hand it the one the decision was made on.
            DECIDED_TRACE_ID.set(Some(trace_id));
        }
        let started = self.start_with_sdk(headers, method, route);
        DECIDED_TRACE_ID.set(None);
        started
    }

    /// The request's span as the SDK makes it (its sampler decides again,
    /// with the same rule on the same ids, so it agrees).
    fn start_with_sdk(&self, headers: &HeaderMap, method: &Method, route: &str) -> RequestSpan {
        let parent = propagator().extract(&opentelemetry_http::HeaderExtractor(headers));
        let span =
            self.tracer.span_builder("request").with_kind(SpanKind::Server).start_with_context(&self.tracer, &parent);
        if !span.is_recording() {
            let span_context = span.span_context();
            return RequestSpan::Unsampled(UnsampledSpan {
                trace_id: span_context.trace_id(),
                span_id: span_context.span_id(),
                has_parent: parent.has_active_span(),
            });
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

thread_local! {
    /// The trace id a sampled root span was decided on, for the SDK's id
    /// generator to hand out next (set and cleared around one synchronous
    /// span start on this thread).
    static DECIDED_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// The SDK's random ids, except a root span's trace id when the sampling
/// decision was already made on one.
#[derive(Debug, Default)]
struct DecidedIds;

impl IdGenerator for DecidedIds {
    fn new_trace_id(&self) -> TraceId {
        DECIDED_TRACE_ID.take().unwrap_or_else(|| RandomIdGenerator::default().new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

impl SamplerChoice {
    /// The decision the SDK's sampler makes for a span whose remote parent
    /// is `parent_sampled` (`None`: no valid parent) in trace `trace_id`.
    fn samples(self, parent_sampled: Option<bool>, trace_id: TraceId) -> bool {
        let root = match (self, parent_sampled) {
            (Self::ParentBasedAlwaysOn | Self::ParentBasedAlwaysOff | Self::ParentBasedRatio(_), Some(sampled)) => {
                return sampled;
            }
            (Self::ParentBasedAlwaysOn, None) => Self::AlwaysOn,
            (Self::ParentBasedAlwaysOff, None) => Self::AlwaysOff,
            (Self::ParentBasedRatio(ratio), None) => Self::Ratio(ratio),
            (other, _) => other,
        };
        match root {
            Self::Ratio(ratio) => ratio_samples(ratio, trace_id),
            Self::AlwaysOff => false,
            _ => true,
        }
    }
}

/// `TraceIdRatioBased`'s test: the trace id's low 64 bits, shifted right
/// once, below the ratio of 2^63.
fn ratio_samples(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let upper_bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let low = (u128::from_be_bytes(trace_id.to_bytes()) & u128::from(u64::MAX)) as u64;
    (low >> 1) < upper_bound
}

/// What the caller's `traceparent` says.
enum CallerParent {
    /// None sent.
    None,
    /// A valid parent in the canonical form (`00-{32 hex}-{16 hex}-{2 hex}`).
    Valid { trace_id: TraceId, sampled: bool },
    /// Something else (another version, odd spacing, invalid): the SDK's
    /// propagator reads it, so it is judged exactly as before.
    Unusual,
}

impl CallerParent {
    fn read(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(&TRACEPARENT) else {
            return Self::None;
        };
        let bytes = value.as_bytes();
        let canonical =
            bytes.len() == TRACEPARENT_LEN && bytes.starts_with(b"00-") && bytes[35] == b'-' && bytes[52] == b'-';
        if !canonical {
            return Self::Unusual;
        }
        let (Some(trace_id), Some(span_id), Some(flags)) =
            (lower_hex(&bytes[3..35]), lower_hex(&bytes[36..52]), lower_hex(&bytes[53..55]))
        else {
            return Self::Unusual;
        };
        if trace_id == 0 || span_id == 0 {
            return Self::Unusual;
        }
        Self::Valid { trace_id: TraceId::from(trace_id), sampled: flags as u8 & SAMPLED_FLAG != 0 }
    }
}

/// The value of lowercase hex digits (at most 32; `None` for anything else).
fn lower_hex(digits: &[u8]) -> Option<u128> {
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    digits.iter().try_fold(0u128, |value, digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

/// A request's server span.
pub(crate) enum RequestSpan {
    /// Exported: its context is attached to the request's future.
    Sampled(Context),
    /// Not exported: only its ids travel on (see [`write_trace_headers`]).
    Unsampled(UnsampledSpan),
}

/// The ids of a span that is not exported.
pub(crate) struct UnsampledSpan {
    trace_id: TraceId,
    span_id: SpanId,
    /// Whether it continues the caller's trace (whose `tracestate` then
    /// goes on with it).
    has_parent: bool,
}

/// `traceparent` (and the caller's `tracestate`) of an unsampled request's
/// span, into the headers that go upstream: the upstream continues the trace,
/// knowing it is not sampled.
pub(crate) fn write_trace_headers(span: &UnsampledSpan, headers: &mut HeaderMap) {
    let mut traceparent = [0u8; TRACEPARENT_LEN];
    traceparent[..3].copy_from_slice(b"00-");
    write_hex(&span.trace_id.to_bytes(), &mut traceparent[3..35]);
    traceparent[35] = b'-';
    write_hex(&span.span_id.to_bytes(), &mut traceparent[36..52]);
    traceparent[52..].copy_from_slice(b"-00");
    if let Ok(value) = HeaderValue::from_bytes(&traceparent) {
        headers.insert(TRACEPARENT, value);
    }
    // The caller's state as the propagator reads it (an invalid one is
    // dropped) goes on with the caller's trace; a new trace has none.
    let state = span
        .has_parent
        .then(|| headers.get(&TRACESTATE))
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| TraceState::from_str(value).ok())
        .map(|state| state.header());
    match state.and_then(|state| HeaderValue::try_from(state).ok()).filter(|value| !value.is_empty()) {
        Some(value) => headers.insert(TRACESTATE, value),
        None => headers.remove(&TRACESTATE),
    };
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// The W3C trace context headers, as names built at compile time: a `&str`
/// name is parsed and checked again on every lookup.
pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `00-{trace id}-{span id}-{flags}`.
const TRACEPARENT_LEN: usize = 55;
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
    headers.remove(&TRACESTATE);
    propagator().inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
}

#[cfg(test)]
mod tests {
    use super::{
        Context, RequestSpan, SamplerChoice, SpanKind, TelemetryError, TraceSettings, TraceSubject, Tracing,
        hash_subject, write_trace_headers,
    };

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

    /// The decision taken before the SDK is asked is the SDK sampler's, for
    /// every sampler, with and without a (sampled or unsampled) parent.
    #[test]
    fn the_early_sampling_decision_agrees_with_the_sdk_sampler() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
        use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample};
        let ids = RandomIdGenerator::default();
        let choices = [
            SamplerChoice::AlwaysOn,
            SamplerChoice::AlwaysOff,
            SamplerChoice::Ratio(0.01),
            SamplerChoice::Ratio(0.5),
            SamplerChoice::Ratio(0.0),
            SamplerChoice::ParentBasedAlwaysOn,
            SamplerChoice::ParentBasedAlwaysOff,
            SamplerChoice::ParentBasedRatio(0.01),
            SamplerChoice::ParentBasedRatio(0.5),
        ];
        for choice in choices {
            let sdk = choice.sampler();
            let mut sampled = [0u32; 3];
            for round in 0..3000 {
                let trace_id = ids.new_trace_id();
                let parent_sampled = [None, Some(true), Some(false)][round % 3];
                let parent = match parent_sampled {
                    None => Context::new(),
                    Some(flag) => Context::new().with_remote_span_context(SpanContext::new(
                        trace_id,
                        SpanId::from(7),
                        if flag { TraceFlags::SAMPLED } else { TraceFlags::default() },
                        true,
                        TraceState::default(),
                    )),
                };
                let expected =
                    sdk.should_sample(Some(&parent), trace_id, "request", &SpanKind::Server, &[], &[]).decision
                        == SamplingDecision::RecordAndSample;
                let early = choice.samples(parent_sampled, trace_id);
                assert_eq!(early, expected, "{choice:?}, parent {parent_sampled:?}, {trace_id}");
                sampled[round % 3] += u32::from(early);
            }
            if let SamplerChoice::Ratio(0.5) | SamplerChoice::ParentBasedRatio(0.5) = choice {
                assert!((300..700).contains(&sampled[0]), "{choice:?}: {sampled:?} of 1000 root spans sampled");
            }
        }
        // The boundary of the ratio test, on both sides.
        let half = |low: u64| TraceId::from(u128::from(low));
        assert!(SamplerChoice::Ratio(0.5).samples(None, half((1 << 62) * 2 - 2)));
        assert!(!SamplerChoice::Ratio(0.5).samples(None, half((1 << 62) * 2)));
    }

    /// A request's span: an unsampled one writes the upstream a traceparent of
    /// its own in the caller's trace, a sampled root span keeps the trace id
    /// the decision was made on.
    #[test]
    fn request_spans_carry_the_decided_ids() {
        use axum::http::{HeaderMap, HeaderValue, Method};
        use opentelemetry::trace::{TraceContextExt, TraceId};
        let settings = TraceSettings {
            traces_url: "http://127.0.0.1:9/v1/traces".to_owned(),
            service_name: "test".to_owned(),
            sampler: SamplerChoice::ParentBasedRatio(0.5),
            subject: TraceSubject::Off,
        };
        let tracing = Tracing::start(&settings).unwrap();
        let mut caller = HeaderMap::new();
        caller
            .insert("traceparent", HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"));
        caller.insert("tracestate", HeaderValue::from_static("vendor=a, other=b"));
        let RequestSpan::Unsampled(span) = tracing.start_request(&caller, &Method::POST, "/mcp/x") else {
            panic!("a caller's unsampled trace is not sampled");
        };
        let mut upstream = caller.clone();
        write_trace_headers(&span, &mut upstream);
        let traceparent = upstream["traceparent"].to_str().unwrap();
        assert!(traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "{traceparent}");
        assert!(traceparent.ends_with("-00") && traceparent.len() == 55, "{traceparent}");
        assert_ne!(&traceparent[36..52], "b7ad6b7169203331", "the upstream's parent is the gateway's span");
        assert_eq!(upstream["tracestate"], "vendor=a,other=b");
        let (mut sampled, mut unsampled) = (0, 0);
        for _ in 0..400 {
            match tracing.start_request(&HeaderMap::new(), &Method::POST, "/mcp/x") {
                RequestSpan::Sampled(cx) => {
                    let trace_id: TraceId = cx.span().span_context().trace_id();
                    assert!(SamplerChoice::Ratio(0.5).samples(None, trace_id), "{trace_id}");
                    cx.span().end();
                    sampled += 1;
                }
                RequestSpan::Unsampled(span) => {
                    let mut upstream = HeaderMap::new();
                    write_trace_headers(&span, &mut upstream);
                    assert!(!upstream.contains_key("tracestate"));
                    let trace_id = TraceId::from_hex(&upstream["traceparent"].to_str().unwrap()[3..35]).unwrap();
                    assert!(!SamplerChoice::Ratio(0.5).samples(None, trace_id), "{trace_id}");
                    unsampled += 1;
                }
            }
        }
        // Half of them: were the SDK to draw another trace id and decide
        // again, only a quarter would be.
        assert!((140..=260).contains(&sampled), "{sampled} sampled, {unsampled} not");
        tracing.shutdown();
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
