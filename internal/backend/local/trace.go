package local

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// engineSpans records one generation's stages in the engine as spans under the span in ctx
// (the upstream attempt), from the times the scheduler noted: waiting for a slot, computing
// the prompt (up to the first token), and generating the rest.
func engineSpans(ctx context.Context, tm runner.Timing, res runner.Result, err error) {
	if tm.Queued.IsZero() || tm.Done.IsZero() {
		return // the caller left before the scheduler finished: nothing reliable to show
	}
	admitted := tm.Admitted
	if admitted.IsZero() {
		admitted = tm.Done
	}
	_, q := telemetry.StartSpan(ctx, telemetry.SpanEngineQueue, trace.WithTimestamp(tm.Queued))
	q.End(trace.WithTimestamp(admitted))
	if tm.Admitted.IsZero() {
		return
	}
	first := tm.FirstToken
	if first.IsZero() {
		first = tm.Done
	}
	_, p := telemetry.StartSpan(ctx, telemetry.SpanEnginePrefill, trace.WithTimestamp(tm.Admitted),
		trace.WithAttributes(telemetry.GenAIUsageInputTokens.Int(res.PromptTokens), telemetry.AttrCachedTokens.Int(res.CachedTokens)))
	if err != nil && tm.FirstToken.IsZero() {
		telemetry.Fail(p, string(apierr.CodeEngineError), "the generation failed")
	}
	p.End(trace.WithTimestamp(first))
	if tm.FirstToken.IsZero() {
		return
	}
	_, d := telemetry.StartSpan(ctx, telemetry.SpanEngineDecode, trace.WithTimestamp(tm.FirstToken),
		trace.WithAttributes(telemetry.GenAIUsageOutputTokens.Int(res.CompletionTokens)))
	if err != nil {
		telemetry.Fail(d, string(apierr.CodeEngineError), "the generation failed")
	}
	d.End(trace.WithTimestamp(tm.Done))
}
