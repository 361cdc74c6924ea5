//! One trace per image: an in-process OTLP/HTTP receiver collects the spans of the gateway (in
//! this process) and of the worker binary, and the test checks their trace ids and links.

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use facematch_core::telemetry::{self, TelemetryGuard};
use facematch_testkit::{System, images::face_crop, paths::weights_dir, within};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    trace::v1::Span,
};
use poem::{EndpointExt, Route, Server, handler, listener::TcpListener, post, web::Data};
use prost::Message;

/// A span with the service that sent it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

type Store = Arc<Mutex<Vec<Received>>>;

#[handler]
async fn export(body: Vec<u8>, Data(store): Data<&Store>) -> poem::Response {
    if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
        let mut spans = store.lock().expect("store");
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
    }
    poem::Response::builder()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

/// Starts the receiver and this process's telemetry pointed at it (once per test binary).
async fn receiver() -> (String, Store, &'static TelemetryGuard) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = std_listener.local_addr().expect("addr");
    drop(std_listener);
    let store: Store = Arc::default();
    let app = Route::new()
        .at("/v1/traces", post(export))
        .data(store.clone());
    tokio::spawn(Server::new(TcpListener::bind(addr.to_string())).run(app));
    let endpoint = format!("http://{addr}");
    static GUARD: OnceLock<TelemetryGuard> = OnceLock::new();
    let url = endpoint.clone();
    let guard = GUARD.get_or_init(|| {
        std::thread::spawn(move || telemetry::init("facematch-gateway", None, Some(&url)))
            .join()
            .expect("telemetry")
    });
    (endpoint, store, guard)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn find(spans: &[Received], pred: impl Fn(&Received) -> bool) -> Option<&Received> {
    spans.iter().find(|s| pred(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_request_publish_job_and_redis_write() {
    within(async {
        let (endpoint, store, guard) = receiver().await;
        let sys = System::new("trace").await;
        let mut worker = Command::new(env!("CARGO_BIN_EXE_gpu-worker"))
            .env("FACEMATCH_AMQP_PREFIX", format!("{}.", sys.id))
            .env("FACEMATCH_KEY_PREFIX", format!("{}:", sys.id))
            .env("FACEMATCH_WEIGHTS_DIR", weights_dir())
            .env("FACEMATCH_DEVICE", "cpu")
            .env("FACEMATCH_METRICS_LISTEN", "127.0.0.1:0")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gpu-worker");

        // An incoming traceparent is honoured: the whole trace continues the caller's.
        let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let resp = sys
            .client
            .post("/scan/image/traced.png")
            .header(
                "traceparent",
                format!("00-{caller_trace}-00f067aa0ba902b7-01"),
            )
            .body(face_crop(1, 0, 1.0, image::ImageFormat::Png))
            .send()
            .await;
        let body = resp.0.into_body().into_string().await.expect("body");
        let hash: facematch_core::ImageHash = serde_json::from_str::<serde_json::Value>(&body)
            .expect("json")["hash"]
            .as_str()
            .expect("hash")
            .parse()
            .expect("hash");
        assert_eq!(
            sys.wait_final(hash, Duration::from_secs(120)).await["state"],
            "done"
        );

        // Stop the worker (SIGTERM flushes its spans) and flush ours.
        let sent = Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        while worker.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "worker did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        guard.flush();

        let deadline = Instant::now() + Duration::from_secs(20);
        let (request, publish, job, store_step, write, batch) = loop {
            let spans = store.lock().expect("store").clone();
            let request = find(&spans, |s| s.span.name == "POST /scan/image/traced.png").cloned();
            let trace = request.as_ref().map(|r| r.span.trace_id.clone());
            let in_trace = |name: &str| {
                find(&spans, |s| {
                    Some(&s.span.trace_id) == trace.as_ref() && s.span.name == name
                })
                .cloned()
            };
            let publish = in_trace("amqp.publish");
            let job = in_trace("job");
            let store_step = in_trace("store.finish_job");
            let write = store_step.as_ref().and_then(|st| {
                find(&spans, |s| {
                    s.span.name == "redis.finish_job" && s.span.parent_span_id == st.span.span_id
                })
                .cloned()
            });
            let batch = job.as_ref().and_then(|j| {
                find(&spans, |s| {
                    s.span.name == "batch"
                        && s.span.links.iter().any(|l| l.span_id == j.span.span_id)
                })
                .cloned()
            });
            if let (Some(r), Some(p), Some(j), Some(st), Some(w), Some(b)) =
                (request, publish, job, store_step, write, batch)
            {
                break (r, p, j, st, w, b);
            }
            let names: Vec<String> = spans
                .iter()
                .map(|s| format!("{}:{}", s.service, s.span.name))
                .collect();
            assert!(
                Instant::now() < deadline,
                "spans missing; received {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(hex(&request.span.trace_id), caller_trace);
        assert_eq!(request.service, "facematch-gateway");
        let route = request
            .span
            .attributes
            .iter()
            .find(|kv| kv.key == "http.route")
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone());
        assert_eq!(
            route,
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "/scan/image/{filename}".into()
                )
            ),
            "the request span names its route template"
        );
        assert_eq!(
            publish.span.parent_span_id, request.span.span_id,
            "publish ← request"
        );
        assert_eq!(job.service, "facematch-worker");
        assert_eq!(
            job.span.parent_span_id, publish.span.span_id,
            "job ← publish (over AMQP)"
        );
        assert_eq!(
            store_step.span.parent_span_id, job.span.span_id,
            "store step ← job"
        );
        assert_eq!(
            write.span.parent_span_id, store_step.span.span_id,
            "redis write ← store step"
        );
        assert_eq!(write.span.trace_id, request.span.trace_id);
        assert!(
            batch
                .span
                .attributes
                .iter()
                .any(|kv| kv.key == "batch_size"),
            "the batch span records its size"
        );
        sys.cleanup().await;
    })
    .await;
}
