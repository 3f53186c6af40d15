import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestQueue, type TestQueue } from '../testing/testQueue.js';

describe('OpenTelemetry spans', () => {
  const exporter = new InMemorySpanExporter();
  let harness: TestQueue;

  beforeAll(async () => {
    // What a team's SDK set-up registers; without it the spans are no-ops.
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    harness = await startTestQueue({ env: { WORKER_ENABLED: 'false' } });
  });
  afterAll(async () => {
    await harness?.close();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('follow a job from the request that submitted it to the handler that ran it and its completion, in one trace', async () => {
    const request = trace.getTracer('the-app').startSpan('POST /orders');
    const { job } = await context.with(trace.setSpan(context.active(), request), () =>
      harness.queue.submitJob({ type: 'echo', userId: 'traced', payload: { message: 'hi' } }),
    );
    request.end();
    expect(job.traceParent).toMatch(new RegExp(`^00-${request.spanContext().traceId}-[0-9a-f]{16}-01$`));

    const worker = await harness.startWorker();
    try {
      await expect.poll(async () => (await harness.queue.getJob(job.id))?.status, { timeout: 15_000 }).toBe('COMPLETED');
    } finally {
      await worker.stop(1000);
    }
    const spans = exporter.getFinishedSpans();
    const named = (name: string) => spans.filter((span) => span.name === name);
    const [submit] = named('conveyor.submit');
    const [run] = named('conveyor.run echo').filter((span) => span.attributes['conveyor.job.id'] === job.id);
    const complete = named('conveyor.complete').find((span) => span.attributes['conveyor.job.id'] === job.id);
    expect(named('conveyor.claim').length).toBeGreaterThan(0);
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
    // request → submit → run → complete, all in the request's trace.
    expect(submit!.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentOf(submit!)).toBe(request.spanContext().spanId);
    expect(run!.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentOf(run!)).toBe(submit!.spanContext().spanId);
    expect(parentOf(complete!)).toBe(run!.spanContext().spanId);
    expect(run!.attributes).toMatchObject({ 'conveyor.job.type': 'echo', 'conveyor.job.attempt': 1 });
  });
});
