//! A streamed gateway call: OpenAI chunks as the upstream's deltas arrive, the run
//! logged before `[DONE]`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use prompt_core::{
    ChatRequest, ChatResponse, Error, Provider, ProviderError, ProviderErrorKind, StreamEvent,
};
use serde_json::json;
use tokio::sync::mpsc;

use super::*;
use crate::error::OpenAiError;
use crate::state::AppState;

pub(super) async fn stream_chat(
    state: AppState,
    provider: Arc<dyn Provider>,
    request: ChatRequest,
    draft: RunDraft,
    include_usage: bool,
    started: Instant,
    progress: &mut Progress,
) -> Result<Response, OpenAiError> {
    use tracing::Instrument;
    let span = draft.chat_span();
    let upstream_started = Instant::now();
    let opened = match provider.stream(&request).instrument(span.clone()).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind == ProviderErrorKind::Unsupported => Ok(None),
        Err(e) => Err(e),
    };
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            // Refused before the first event: an ordinary error response (429 …).
            let e = Error::from(e);
            prompt_core::call::record_failure(&span, prompt_core::execute::run_error_kind(&e));
            let run = draft.finish(&state, &Err(e.clone()), upstream_started.elapsed())?;
            log_run(&state, run).await?;
            progress.run_id = Some(draft.id);
            return Err(e.into());
        }
    };
    let open_wait = upstream_started.elapsed();
    let shape = ChunkShape {
        id: format!("chatcmpl-{}", draft.id.simple()),
        created: chrono::Utc::now().timestamp(),
        model: request.model.clone(),
        include_usage,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let head_overhead = started.elapsed().saturating_sub(open_wait);
    let run_id = draft.id;
    // The call's span goes on with the task that reads the stream.
    let relay = async move {
        let mut client_gone = false;
        // The role chunk opens every OpenAI stream.
        let _ = tx
            .send(shape.chunk(json!({"role": "assistant", "content": ""}), None))
            .await;
        let outcome: Result<ChatResponse, Error> = match opened {
            None => provider
                .complete(&request)
                .await
                .map_err(Error::from)
                .inspect(|r| {
                    let _ = tx.try_send(shape.chunk(json!({"content": r.content}), None));
                }),
            Some(mut s) => {
                let mut text = String::new();
                let mut first: Option<Duration> = None;
                let mut result = None;
                while let Some(ev) = s.next().await {
                    match ev {
                        Ok(StreamEvent::Delta(d)) => {
                            if first.is_none() && !d.is_empty() {
                                first = Some(upstream_started.elapsed());
                            }
                            text.push_str(&d);
                            if !client_gone
                                && tx
                                    .send(shape.chunk(json!({"content": d}), None))
                                    .await
                                    .is_err()
                            {
                                client_gone = true;
                            }
                        }
                        Ok(StreamEvent::Done(mut r)) => {
                            if r.time_to_first_token.is_none() {
                                r.time_to_first_token = first;
                            }
                            if r.content.is_empty() {
                                r.content = std::mem::take(&mut text);
                            }
                            result = Some(Ok(r));
                            break;
                        }
                        Err(e) => {
                            result = Some(Err(Error::from(e)));
                            break;
                        }
                    }
                }
                result.unwrap_or_else(|| {
                    Err(Error::from(ProviderError::new(
                        ProviderErrorKind::Connection,
                        provider.name(),
                        "the stream ended before the provider said it was complete",
                    )))
                })
            }
        };
        let upstream = upstream_started.elapsed();
        prompt_core::call::record_outcome(&tracing::Span::current(), &outcome);
        if let Ok(r) = &outcome {
            let _ = tx
                .send(shape.chunk(json!({}), Some(finish_reason(r.finish_reason.as_deref()))))
                .await;
            if include_usage {
                let _ = tx.send(shape.usage(r)).await;
            }
        }
        let logged = match draft.finish(&state, &outcome, upstream) {
            Ok(run) => log_run(&state, run).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &logged {
            tracing::warn!(run = %run_id, error = %e, "logging a streamed gateway call failed");
        }
        let tail = match (&outcome, logged) {
            (Ok(_), Ok(())) => Bytes::from_static(b"data: [DONE]\n\n"),
            (Err(e), _) => sse(&OpenAiError::from(e.clone()).into_parts().body),
            (Ok(_), Err(e)) => sse(&OpenAiError::from(e).into_parts().body),
        };
        let _ = tx.send(tail).await;
        record_overhead(started.elapsed().saturating_sub(upstream));
    };
    tokio::spawn(relay.instrument(span));
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(OVERHEAD_HEADER, overhead_value(head_overhead));
    if let Ok(v) = HeaderValue::from_str(&run_id.to_string()) {
        h.insert(RUN_ID_HEADER, v);
    }
    Ok(resp)
}
