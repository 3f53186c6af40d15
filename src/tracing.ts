import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';

/**
 * OpenTelemetry spans for submit, claim, run and complete, through @opentelemetry/api alone: they are
 * no-ops until the team registers an SDK (a tracer provider and a propagator) in its process. A job
 * carries the W3C traceparent of the span that submitted it, so that the span of its run, in the
 * built-in worker or in an outside worker, joins the submitter's trace.
 */
const tracer = () => trace.getTracer('conveyor');

/** Runs `work` inside a span named `name`, ending it with the outcome (an error sets its status). */
export async function inSpan<T>(
  name: string,
  options: { kind?: SpanKind; attributes?: Record<string, string | number | boolean>; parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(
    name,
    { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes },
    options.parent ?? context.active(),
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The traceparent of the active span, to store with a job; null when nothing is traced. */
export function currentTraceParent(): string | null {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ?? null;
}

/** The context a job's traceparent stands for (the active one when the job carries none). */
export function contextOfTraceParent(traceParent: string | null | undefined): Context {
  return traceParent ? propagation.extract(context.active(), { traceparent: traceParent }) : context.active();
}

export { SpanKind };
