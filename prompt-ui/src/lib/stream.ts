// A streamed chat completion through the gateway (`POST /v1/chat/completions` with
// `stream: true`): OpenAI's chunks as Server-Sent Events, parsed by eventsource-parser.
// The gateway logs the call as a run and names it in `x-prompt-registry-run-id`.
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { ApiError } from '../api/client';
import { session } from './session';

/** What a finished stream leaves. */
export interface StreamResult {
  runId: string | null;
  text: string;
}

/** Send `body` with `stream: true`; `onText` gets the text so far after each chunk. */
export async function streamChat(
  body: Record<string, unknown>,
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<StreamResult> {
  const token = await session.accessToken();
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'text/event-stream',
    'X-Requested-With': 'prompt-registry-console',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  const project = session.project();
  if (project) headers['X-Project'] = project;
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers,
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  const runId = res.headers.get('x-prompt-registry-run-id');
  if (!res.ok || !res.body) {
    // The gateway answers errors in OpenAI's shape: {"error": {"message", "type", "code"}}.
    const e = (await res.json().catch(() => null)) as { error?: { message?: string; code?: string; param?: string } } | null;
    const msg = e?.error?.message ?? `the gateway answered ${res.status}`;
    throw new ApiError(res.status, e?.error?.code ?? 'gateway_error', e?.error?.param ? `${e.error.param}: ${msg}` : msg);
  }
  let text = '';
  const reader = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (value.data === '[DONE]') break;
    const chunk = JSON.parse(value.data) as {
      choices?: { delta?: { content?: string | null } }[];
      error?: { message?: string };
    };
    if (chunk.error) throw new ApiError(502, 'provider_error', chunk.error.message ?? 'the provider failed');
    const delta = chunk.choices?.[0]?.delta?.content;
    if (delta) {
      text += delta;
      onText(text);
    }
  }
  return { runId, text };
}
