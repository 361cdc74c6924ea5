//! Assembles the HTTP application: the API, its OpenAPI spec and docs UI, and the access log
//! that also turns every error (unknown route, wrong method, malformed parameter included)
//! into the JSON error shape, with an `Allow` header on 405.

use std::{sync::Arc, time::Instant};

use facematch_core::amqp::trace_context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response, Route,
    http::{HeaderValue, StatusCode, header},
};
use poem_openapi::OpenApiService;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    error::ApiError,
    route::RouteTable,
    routes::{
        admin::AdminApi, faces::FaceApi, health::HealthApi, images::ImageApi, matches::MatchApi,
        scan::ScanApi,
    },
    state::AppState,
};

/// The whole gateway as a poem endpoint (tests drive it without a socket), `/metrics`
/// included.
pub fn app(state: AppState) -> impl Endpoint {
    app_with(state, true)
}

/// The gateway, with `/metrics` on the same listener or not (when it has its own,
/// [`metrics_app`], so that what is exposed to the outside is the API alone).
pub fn app_with(state: AppState, with_metrics: bool) -> impl Endpoint {
    let api = OpenApiService::new(
        (ScanApi, MatchApi, ImageApi, FaceApi, AdminApi, HealthApi),
        "facematch",
        env!("CARGO_PKG_VERSION"),
    );
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let routes = Arc::new(RouteTable::from_spec(&api.spec()));
    let mut route = Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .nest("/ui", crate::ui::routes())
        .at("/openapi.json", spec);
    if with_metrics {
        route = route.at("/metrics", poem::get(crate::metrics::render));
    }
    route
        .around(move |next, req| access_log(next, req, routes.clone()))
        .data(state)
}

/// `/metrics` alone, for its own listener (`FACEMATCH_GATEWAY_METRICS_LISTEN`).
pub fn metrics_app() -> impl Endpoint {
    Route::new().at("/metrics", poem::get(crate::metrics::render))
}

/// One span per request (parent taken from an incoming `traceparent`), one info and one debug
/// log line per request, and JSON errors for everything.
async fn access_log<E: Endpoint>(
    next: E,
    req: Request,
    routes: Arc<RouteTable>,
) -> poem::Result<Response> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let parent: Vec<(String, String)> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| {
            let v = req.headers().get(k)?.to_str().ok()?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect();
    let user_agent = req
        .headers()
        .get(poem::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {path}"),
        otel.kind = "server",
        http.method = %method,
        http.target = %path,
        http.route = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
    );
    if !parent.is_empty() {
        let _ = span.set_parent(trace_context::extract(&parent));
    }
    let started = Instant::now();
    let (mut resp, template) = match next.call(req).instrument(span.clone()).await {
        Ok(out) => {
            let resp = out.into_response();
            let template = routes.template(resp.data(), resp.data::<PathPattern>());
            (resp, template)
        }
        Err(e) => {
            let template = routes.template(e.data(), e.data::<PathPattern>());
            let resp = if e.is_from_response() {
                e.into_response()
            } else {
                json_error(e).into_response()
            };
            (resp, template)
        }
    };
    if let Some(template) = &template {
        span.record("http.route", &**template);
    }
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = template.as_deref().and_then(|t| routes.allow(t))
        && let Ok(allow) = HeaderValue::from_str(allow)
    {
        resp.headers_mut().insert(header::ALLOW, allow);
    }
    let status = resp.status().as_u16();
    span.record("http.status_code", status);
    crate::metrics::request(
        method.as_str(),
        template.unwrap_or_else(|| Arc::from("other")),
        status,
        started.elapsed().as_secs_f64(),
    );
    let ms = started.elapsed().as_secs_f64() * 1e3;
    span.in_scope(|| {
        tracing::info!(target: "gateway::access", "{method} {path} {status} {ms:.1}ms");
        tracing::debug!(target: "gateway::access", %method, %path, status, ms, user_agent, "request handled");
    });
    Ok(resp)
}

/// poem's own errors as our JSON errors; a parameter that does not parse or validate gets the
/// same code the handler would give it.
fn json_error(e: poem::Error) -> ApiError {
    use poem_openapi::{
        error::{ParseParamError, ParsePathError},
        types::Type,
    };
    // A path parameter's own parser ([`crate::params`]) fails with a `ParsePathError` that
    // names the parameter `param0`; its reason names the parameter's type.
    if let Some(path) = e.downcast_ref::<ParsePathError>() {
        let code = if path.reason.contains(&*crate::params::HashParam::name()) {
            "invalid_hash"
        } else {
            "invalid_parameter"
        };
        return ApiError::bad_request(code, e.to_string());
    }
    // A validator's refusal is a `ParseParamError` with the parameter's name.
    if let Some(param) = e.downcast_ref::<ParseParamError>() {
        let code = match param.name {
            "hash" => "invalid_hash",
            "filename" => "invalid_filename",
            _ => "invalid_parameter",
        };
        return ApiError::bad_request(code, e.to_string());
    }
    ApiError::from_status(e.status(), e.to_string())
}
