// OpenTelemetry as an application sets it up, before anything loads pg: a Node tracer provider with an
// in-memory exporter (real spans, kept for the test to read), the library's tenant span processor, and
// the pg instrumentation — imported first by the test file that reads spans.
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { tenantSpanProcessor } from '../../src/index';

export const exporter = new InMemorySpanExporter();
export const provider = new NodeTracerProvider({
  spanProcessors: [tenantSpanProcessor(), new SimpleSpanProcessor(exporter)],
});
provider.register();
registerInstrumentations({ tracerProvider: provider, instrumentations: [new PgInstrumentation()] });
