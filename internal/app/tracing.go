package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/augment-connector/augment-connector/internal/config"
)

// TracerProvider builds the OpenTelemetry tracer provider of the tracing section: an OTLP/HTTP
// exporter behind a batch processor, a parent-based ratio sampler and a resource naming the
// service. It returns nil when tracing is off. Nothing is registered globally: the caller
// passes it in connector.Options.TracerProvider and calls Shutdown on exit, which exports
// the spans still buffered. The SDK reads its own OTEL_EXPORTER_OTLP_* (endpoint, headers,
// timeout, compression) and OTEL_BSP_* variables for what the section does not set.
func TracerProvider(ctx context.Context, tc *config.TracingConfig, version string) (*sdktrace.TracerProvider, error) {
	if !tc.Enabled {
		return nil, nil
	}
	opts, err := exporterOptions(tc)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: creating the OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", tc.ServiceName),
		attribute.String("service.version", version),
	))
	if err != nil {
		return nil, fmt.Errorf("tracing: building the resource: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.SampleRatio))),
	), nil
}

// exporterOptions are the OTLP/HTTP exporter's options of tc.
func exporterOptions(tc *config.TracingConfig) ([]otlptracehttp.Option, error) {
	var opts []otlptracehttp.Option
	if tc.Endpoint != "" {
		u, err := url.Parse(tc.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("tracing.endpoint: %w", err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces" // as OTEL_EXPORTER_OTLP_ENDPOINT
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	} else if tc.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	tlsCfg, err := tc.ClientTLSConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
	}
	if len(tc.Headers) > 0 {
		h := make(map[string]string, len(tc.Headers))
		for k, v := range tc.Headers {
			h[k] = string(v)
		}
		opts = append(opts, otlptracehttp.WithHeaders(h))
	}
	return opts, nil
}
